// common/queue_file.cpp: the entry file's trailer, and finding the parts of an entry file.
#include "common/queue_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace tikimail {

namespace {

constexpr size_t kLengthDigits = kQueueFileTrailer - kQueueFileMagic.size();  // 16

// Reads exactly `size` bytes at `offset` into `out`. EOF first means the file shrank.
Status pread_exact(int fd, std::string* out, size_t size, uint64_t offset, std::string_view what) {
  out->assign(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd, out->data() + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno(fmt::format("read {}", what), errno);
    }
    if (n == 0) return Status::temporary(fmt::format("read {}: the file ended early (it changed)", what));
    got += static_cast<size_t>(n);
  }
  return Status::ok();
}

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
  std::string trailer;
  if (size >= kQueueFileTrailer) {
    if (Status s = pread_exact(fd, &trailer, kQueueFileTrailer, size - kQueueFileTrailer, what); !s) return s;
  }
  auto length = parse_queue_file_trailer(trailer, size);
  if (!length) return Status::permanent(fmt::format("{}: {}", what, length.error().message()));
  QueueFileLayout layout;
  layout.message_bytes = *length;
  const uint64_t envelope_bytes = size - kQueueFileTrailer - *length;
  if (envelope_bytes > kMaxEnvelope)
    return Status::permanent(
        fmt::format("{}: an envelope of {} bytes, more than {}", what, envelope_bytes, kMaxEnvelope));
  if (Status s = pread_exact(fd, &layout.envelope, envelope_bytes, *length, what); !s) return s;
  return layout;
}

}  // namespace tikimail
