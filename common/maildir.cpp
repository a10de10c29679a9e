// common/maildir.cpp: the Maildir delivery algorithm, each step with the crash it survives.
#include "common/maildir.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/fd.h"

namespace tikimail {

namespace {

constexpr size_t kCopyBuffer = 64 * 1024;
constexpr int kNameAttempts = 3;  // an O_EXCL clash means a clock went back; try new names

// Copies the first `bytes` bytes of `from` (pread from offset 0) to `to`, counting them into
// `size`. What follows them in the file (a queue entry's envelope) is never read.
Status copy_message(int from, uint64_t bytes, int to, CrlfSize& size) {
  std::string buf(kCopyBuffer, '\0');
  uint64_t offset = 0;
  while (offset < bytes) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), bytes - offset));
    if (Status s = pread_exact(from, buf.data(), want, offset, bytes, "read message"); !s) return s;
    std::string_view chunk(buf.data(), want);
    if (Status s = write_all(to, chunk); !s) return s;
    size.feed(chunk);
    offset += want;
  }
  return Status::ok();
}

// The decimal number after `key` in `base` (",S=" or ",W="), up to the next ',' or the end.
std::optional<uint64_t> name_field(std::string_view base, std::string_view key) {
  size_t at = base.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view digits = base.substr(at + key.size());
  digits = digits.substr(0, digits.find(','));
  if (digits.empty() || digits.size() > 19) return std::nullopt;  // 19 digits fit in 64 bits
  uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

}  // namespace

void CrlfSize::feed(std::string_view bytes) {
  if (bytes.empty()) return;
  // Every LF whose previous byte (possibly the last of the previous chunk) is not CR.
  char prev = last_;
  for (char c : bytes) {
    if (c == '\n' && prev != '\r') ++added_cr_;
    prev = c;
  }
  bytes_ += bytes.size();
  last_ = bytes.back();
}

uint64_t CrlfSize::octets() const {
  uint64_t ending = 0;  // the line end a sender adds to a message without a final LF
  if (bytes_ > 0 && last_ != '\n') ending = last_ == '\r' ? 1 : 2;
  return bytes_ + added_cr_ + ending;
}

NameSizes parse_name_sizes(std::string_view name) {
  std::string_view base = name.substr(0, name.find(':'));
  return NameSizes{name_field(base, ",S="), name_field(base, ",W=")};
}

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
  return fmt::format("{}.M{:06}P{}Q{}.{}", static_cast<long long>(now.tv_sec), static_cast<long>(now.tv_usec),
                     static_cast<long>(::getpid()), ++counter_, host_);
}

Result<MaildirFile> MaildirWriter::deliver(const std::string& maildir, std::string_view header,
                                           int message_fd, uint64_t message_bytes) {
  MaildirFile file;
  std::string unique;
  std::string tmp_path;
  Fd fd;
  for (int attempt = 0;; ++attempt) {
    unique = unique_name();
    tmp_path = maildir + "/tmp/" + unique;
    // O_EXCL: never write into a file some other delivery is writing.
    auto opened = open_file(tmp_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (opened) {
      fd = std::move(*opened);
      break;
    }
    if (opened.error().errno_value() != EEXIST || attempt + 1 == kNameAttempts) return opened.error();
  }

  CrlfSize size;
  Status s = write_all(fd.get(), header);
  size.feed(header);
  if (s) s = copy_message(message_fd, message_bytes, fd.get(), size);
  file.bytes = size.bytes();
  file.octets = size.octets();
  // The name in new/ carries the sizes (Maildir++ S=, Dovecot W=) so that POP3 answers
  // STAT and LIST without reading the file. The unique part alone keeps the name unique.
  file.name = fmt::format("{},S={},W={}", unique, file.bytes, file.octets);
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
