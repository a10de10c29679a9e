// common/maildir.cpp: the Maildir delivery algorithm, each step with the crash it survives.
#include "common/maildir.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>

#include "common/fd.h"

namespace tikimail {

namespace {

constexpr size_t kCopyBuffer = 64 * 1024;
constexpr int kNameAttempts = 3;  // an O_EXCL clash means a clock went back; try new names

// Copies the whole of `from` (pread from offset 0) to `to`; returns the bytes copied.
Result<uint64_t> copy_message(int from, int to) {
  std::string buf(kCopyBuffer, '\0');
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::pread(from, buf.data(), buf.size(), static_cast<off_t>(total));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno("read message", errno);
    }
    if (n == 0) return total;
    if (Status s = write_all(to, std::string_view(buf.data(), static_cast<size_t>(n))); !s) return s;
    total += static_cast<uint64_t>(n);
  }
}

}  // namespace

std::string maildir_host(std::string_view host) {
  std::string out;
  for (char c : host) {
    if (c == '/') out += "\\057";
    else if (c == ':') out += "\\072";
    else out.push_back(c);
  }
  return out.empty() ? "localhost" : out;
}

MaildirWriter::MaildirWriter(std::string_view host) {
  if (host.empty()) {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) == 0) host_ = maildir_host(name);
    else host_ = maildir_host("localhost");
  } else {
    host_ = maildir_host(host);
  }
}

std::string MaildirWriter::unique_name() {
  struct timeval now;
  ::gettimeofday(&now, nullptr);
  return fmt::format("{}.M{}P{}Q{}.{}", static_cast<long long>(now.tv_sec), static_cast<long>(now.tv_usec),
                     static_cast<long>(::getpid()), ++counter_, host_);
}

Result<MaildirFile> MaildirWriter::deliver(const std::string& maildir, std::string_view header,
                                           int message_fd) {
  MaildirFile file;
  std::string tmp_path;
  Fd fd;
  for (int attempt = 0;; ++attempt) {
    file.name = unique_name();
    tmp_path = maildir + "/tmp/" + file.name;
    // O_EXCL: never write into a file some other delivery is writing.
    auto opened = open_file(tmp_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (opened) {
      fd = std::move(*opened);
      break;
    }
    if (opened.error().errno_value() != EEXIST || attempt + 1 == kNameAttempts) return opened.error();
  }

  Status s = write_all(fd.get(), header);
  if (s) {
    auto copied = copy_message(message_fd, fd.get());
    if (copied) file.bytes = header.size() + *copied;
    else s = copied.error();
  }
  // The bytes reach the disk before any name in new/ points at them: a crash from here to
  // the rename leaves only a file in tmp/, which readers ignore and clean up after 36 hours,
  // and the queue still holds the recipient as unfinished.
  if (s) s = sync_fd(fd.get(), tmp_path);
  // NFS reports write errors at close.
  if (s) s = fd.close();
  // rename(2) is atomic: a reader sees no file in new/ or the whole file.
  std::string new_path = maildir + "/new/" + file.name;
  if (s && ::rename(tmp_path.c_str(), new_path.c_str()) != 0) s = Status::from_errno("rename " + tmp_path, errno);
  if (!s) {
    ::unlink(tmp_path.c_str());
    return Status::temporary(s.message());
  }
  // The new name is on disk before we report success (and the queue forgets the recipient):
  // a crash after this point cannot lose the message.
  if (s = sync_dir(maildir + "/new"); !s) {
    ::unlink(new_path.c_str());  // not acknowledged, so not delivered: the retry writes it again
    return Status::temporary(s.message());
  }
  return file;
}

}  // namespace tikimail
