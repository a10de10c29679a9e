// pop3d/mailbox.cpp: the session lock, the Maildir scan and the UPDATE removal.
#include "pop3d/mailbox.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "common/maildir.h"

namespace tikimail {

namespace fs = std::filesystem;

namespace {

constexpr size_t kReadBuffer = 64 * 1024;

// The names in `dir` that do not start with '.', unsorted.
Result<std::vector<std::string>> visible_names(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return Status::from_errno("list " + dir, ec.value());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!name.empty() && name[0] != '.') names.push_back(std::move(name));
  }
  if (ec) return Status::from_errno("list " + dir, ec.value());
  return names;
}

// The delivery time that starts a Maildir name ("1700000000.M1P2Q3.host"), or 0.
uint64_t delivery_seconds(std::string_view name) {
  uint64_t seconds = 0;
  for (size_t i = 0; i < name.size() && i < 19 && name[i] >= '0' && name[i] <= '9'; ++i)
    seconds = seconds * 10 + static_cast<uint64_t>(name[i] - '0');
  return seconds;
}

bool printable_uid(std::string_view uid) {
  if (uid.empty() || uid.size() > kMaxUid) return false;
  return std::all_of(uid.begin(), uid.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

}  // namespace

Result<Fd> lock_mailbox(const std::string& maildir) {
  std::string path = maildir + "/" + std::string(kPop3LockFile);
  auto fd = open_file(path, O_RDWR | O_CREAT, 0600);
  if (!fd) return fd.error();
  // flock, not fcntl locks: the lock belongs to this open file, so no other fd of this
  // process (a library opening the same file) can drop it by closing.
  while (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    return Status::from_errno("lock " + path, errno == EAGAIN ? EWOULDBLOCK : errno);
  }
  return std::move(*fd);
}

Result<uint64_t> maildir_bytes(const std::string& maildir) {
  uint64_t total = 0;
  for (const char* sub : {"/new", "/cur"}) {
    std::string dir = maildir + sub;
    auto names = visible_names(dir);
    if (!names) return names.error();
    for (const auto& name : *names) {
      struct stat st;
      if (::lstat((dir + "/" + name).c_str(), &st) == 0 && S_ISREG(st.st_mode))
        total += static_cast<uint64_t>(st.st_size);
    }
  }
  return total;
}

Status move_new_to_cur(const std::string& maildir) {
  auto names = visible_names(maildir + "/new");
  if (!names) return names.error();
  for (const auto& name : *names) {
    std::string from = maildir + "/new/" + name;
    std::string to = maildir + "/cur/" + name + (name.find(':') == std::string::npos ? ":2," : "");
    // No fsync of cur/ after the move: a crash leaves the file under one of its two names,
    // and both are read by the next scan.
    if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT)
      return Status::from_errno("rename " + from, errno);
  }
  return Status::ok();
}

Result<uint64_t> file_octets(int fd, std::string_view what) {
  std::string buf(kReadBuffer, '\0');
  CrlfSize size;
  for (;;) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(size.bytes()));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno(fmt::format("read {}", what), errno);
    }
    if (n == 0) return size.octets();
    size.feed(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
}

Result<std::vector<MailboxMessage>> list_cur(const std::string& maildir) {
  std::string dir = maildir + "/cur";
  auto names = visible_names(dir);
  if (!names) return names.error();
  std::vector<MailboxMessage> messages;
  messages.reserve(names->size());
  for (auto& name : *names) {
    std::string path = dir + "/" + name;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return Status::from_errno("stat " + path, errno);
    }
    if (!S_ISREG(st.st_mode)) continue;
    MailboxMessage m;
    NameSizes stated = parse_name_sizes(name);
    // The name's W= is trusted only beside an S= that is the file's size, and only when it is
    // a possible CRLF form of that many bytes (from S to 2S + 2): LIST must give the octets
    // RETR sends (RFC 1939), whatever another Maildir writer put in a name.
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (stated.octets && stated.bytes && *stated.bytes == size && *stated.octets >= size &&
        *stated.octets <= 2 * size + 2) {
      m.octets = *stated.octets;
    } else {  // no W= or no S= (another writer), or the name does not tell the truth: count
      auto fd = open_file(path, O_RDONLY | O_NOFOLLOW);
      if (!fd) {
        if (fd.error().errno_value() == ENOENT) continue;
        return fd.error();
      }
      auto octets = file_octets(fd->get(), path);
      if (!octets) return octets.error();
      m.octets = *octets;
    }
    m.uid = message_uid(name);
    m.name = std::move(name);
    messages.push_back(std::move(m));
  }
  std::sort(messages.begin(), messages.end(), [](const MailboxMessage& a, const MailboxMessage& b) {
    uint64_t sa = delivery_seconds(a.name), sb = delivery_seconds(b.name);
    return sa != sb ? sa < sb : a.name < b.name;
  });
  return messages;
}

Result<std::vector<MailboxMessage>> scan_mailbox(const std::string& maildir) {
  if (Status s = move_new_to_cur(maildir); !s) return s;
  return list_cur(maildir);
}

std::string message_uid(std::string_view name) {
  std::string_view base = name.substr(0, name.find(':'));
  if (printable_uid(base)) return std::string(base);
  unsigned char digest[16];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(base.data()), base.size(),
                     nullptr, 0);
  char hex[2 * sizeof digest + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return std::string(hex, 2 * sizeof digest);
}

size_t remove_messages(const std::string& maildir, const std::vector<std::string>& names) {
  size_t failed = 0;
  for (const auto& name : names) {
    std::string path = maildir + "/cur/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) ++failed;
  }
  // RFC 1939 section 6: +OK says the messages are removed; make the removal durable first,
  // or a crash would bring back mail the client has already been told is gone.
  if (!names.empty() && !sync_dir(maildir + "/cur") && failed == 0) failed = 1;
  return failed;
}

}  // namespace tikimail
