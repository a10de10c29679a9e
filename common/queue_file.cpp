// common/queue_file.cpp: the entry file's trailer, and finding the parts of an entry file.
#include "common/queue_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace tikimail {

namespace {

constexpr size_t kLengthDigits = kQueueFileTrailer - kQueueFileMagic.size();  // 16

}  // namespace

std::string queue_file_trailer(uint64_t message_bytes) {
  return fmt::format("{}{:016x}", kQueueFileMagic, message_bytes);
}

std::string queue_file_contents(std::string_view message, std::string_view envelope) {
  std::string out;
  out.reserve(message.size() + envelope.size() + kQueueFileTrailer);
  out.append(message);
  out.append(envelope);
  out.append(queue_file_trailer(message.size()));
  return out;
}

Result<uint64_t> parse_queue_file_trailer(std::string_view trailer, uint64_t file_size) {
  if (file_size < kQueueFileTrailer || trailer.size() != kQueueFileTrailer)
    return Status::permanent(fmt::format("not a queue entry: {} bytes, shorter than the trailer", file_size));
  if (!trailer.starts_with(kQueueFileMagic)) return Status::permanent("not a queue entry: no trailer at its end");
  uint64_t length = 0;
  for (char c : trailer.substr(kQueueFileMagic.size(), kLengthDigits)) {
    unsigned digit;
    if (c >= '0' && c <= '9') digit = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') digit = static_cast<unsigned>(c - 'a' + 10);
    else return Status::permanent("not a queue entry: the trailer's length is not 16 lowercase hex digits");
    length = length << 4 | digit;
  }
  if (length > file_size - kQueueFileTrailer)
    return Status::permanent(fmt::format("not a queue entry: a message of {} bytes in a file of {}", length, file_size));
  return length;
}

Result<QueueFileLayout> read_queue_file_layout(int fd, std::string_view what) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::from_errno(fmt::format("fstat {}", what), errno);
  if (!S_ISREG(st.st_mode)) return Status::permanent(fmt::format("{}: not a regular file", what));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const std::string read_what = fmt::format("read {}", what);
  std::string trailer;
  if (size >= kQueueFileTrailer) {
    trailer.resize(kQueueFileTrailer);
    if (Status s = pread_exact(fd, trailer.data(), kQueueFileTrailer, size - kQueueFileTrailer, size, read_what); !s)
      return s;
  }
  auto length = parse_queue_file_trailer(trailer, size);
  if (!length) return Status::permanent(fmt::format("{}: {}", what, length.error().message()));
  QueueFileLayout layout;
  layout.message_bytes = *length;
  const uint64_t envelope_bytes = size - kQueueFileTrailer - *length;
  if (envelope_bytes > kMaxEnvelope)
    return Status::permanent(
        fmt::format("{}: an envelope of {} bytes, more than {}", what, envelope_bytes, kMaxEnvelope));
  layout.envelope.resize(envelope_bytes);
  if (Status s = pread_exact(fd, layout.envelope.data(), envelope_bytes, *length, size, read_what); !s) return s;
  return layout;
}

namespace {

constexpr unsigned kPoolTries = 8;

std::string pool_slot(const std::string& queue_dir, unsigned slot) {
  return fmt::format("{}/pool/{}", queue_dir, slot % kPoolSlots);
}

// An OFD lock on the whole file: F_RDLCK for a reader, F_WRLCK to test for readers.
bool ofd_lock(int fd, short type) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  return ::fcntl(fd, F_OFD_SETLK, &lock) == 0;
}

}  // namespace

unsigned pool_hint(std::string_view id) {
  unsigned hint = 0;
  for (char c : id.substr(id.size() >= 2 ? id.size() - 2 : 0))
    hint = hint * 16 + static_cast<unsigned>(c >= 'a' ? c - 'a' + 10 : c >= '0' && c <= '9' ? c - '0' : 0);
  return hint;
}

Status retire_entry_file(const std::string& queue_dir, const std::string& todo_path, unsigned hint) {
  for (unsigned i = 0; i < kPoolTries; ++i) {
    std::string slot = pool_slot(queue_dir, hint + i);
    if (::renameat2(AT_FDCWD, todo_path.c_str(), AT_FDCWD, slot.c_str(), RENAME_NOREPLACE) == 0) return Status::ok();
    if (errno == ENOENT && ::access(todo_path.c_str(), F_OK) != 0) return Status::ok();  // already gone
    if (errno != EEXIST) break;  // no pool/ (an older install), no RENAME_NOREPLACE, ...: unlink
  }
  if (::unlink(todo_path.c_str()) != 0 && errno != ENOENT) return Status::from_errno("unlink " + todo_path, errno);
  return Status::ok();
}

std::optional<Fd> claim_pool_file(const std::string& queue_dir, const std::string& path, unsigned hint, int mode) {
  for (unsigned i = 0; i < kPoolTries; ++i) {
    std::string slot = pool_slot(queue_dir, hint + i);
    if (::renameat2(AT_FDCWD, slot.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
      if (errno == ENOENT) continue;  // an empty slot (or no pool/ at all)
      return std::nullopt;
    }
    // Ours now, under `path`. Anything odd about it and it is dropped, never written.
    int fd = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    Fd file(fd);
    struct stat st;
    bool usable = file.valid() && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == ::geteuid() &&
                  st.st_nlink == 1 && ofd_lock(fd, F_WRLCK) && ofd_lock(fd, F_UNLCK) && ::ftruncate(fd, 0) == 0 &&
                  ((st.st_mode & 07777) == static_cast<mode_t>(mode) || ::fchmod(fd, static_cast<mode_t>(mode)) == 0);
    if (usable) {
      int flags = ::fcntl(fd, F_GETFL);
      if (flags >= 0 && ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0) return file;
    }
    ::unlink(path.c_str());
    return std::nullopt;
  }
  return std::nullopt;
}

Status hold_entry_for_reading(int fd) {
  if (ofd_lock(fd, F_RDLCK)) return Status::ok();
  return Status::from_errno("lock the queue entry for reading", errno);
}

}  // namespace tikimail
