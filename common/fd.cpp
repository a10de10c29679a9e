// common/fd.cpp: file descriptor ownership and the durable-write primitives.
#include "common/fd.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tikimail {

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0 && !borrowed_) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    borrowed_ = std::exchange(other.borrowed_, false);
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0 && !borrowed_) ::close(fd_);
}

Status Fd::close() {
  if (fd_ < 0) return Status::ok();
  int fd = std::exchange(fd_, -1);
  if (borrowed_) return Status::ok();
  if (::close(fd) != 0 && errno != EINTR) return Status::from_errno("close", errno);
  return Status::ok();
}

Result<Fd> open_file(const std::string& path, int flags, int mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Status::from_errno("open " + path, errno);
  return Fd(fd);
}

Status write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno("write", errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::ok();
}

Result<std::string> read_file(const std::string& path, size_t max) {
  auto fd = open_file(path, O_RDONLY);
  if (!fd) return fd.error();
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd->get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno("read " + path, errno);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max)
      return Status::permanent(fmt::format("read {}: larger than {} bytes", path, max));
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status pread_exact(int fd, char* out, size_t size, uint64_t offset, uint64_t total, std::string_view what) {
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd, out + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno(what, errno);
    }
    if (n == 0) return Status::temporary(fmt::format("{}: it ends after {} of {} bytes", what, offset + got, total));
    got += static_cast<size_t>(n);
  }
  return Status::ok();
}

Status sync_fd(int fd, std::string_view what) {
  if (::fsync(fd) != 0) return Status::from_errno(fmt::format("fsync {}", what), errno);
  return Status::ok();
}

Status sync_dir(const std::string& dir) {
  auto fd = open_file(dir, O_RDONLY | O_DIRECTORY);
  if (!fd) return fd.error();
  return sync_fd(fd->get(), dir);
}

Status replace_file(const std::string& path, std::string_view content, int mode) {
  std::string tmp = fmt::format("{}.tmp{}", path, ::getpid());
  auto fd = open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (!fd) return fd.error();
  ::fchmod(fd->get(), static_cast<mode_t>(mode));  // the umask must not widen or narrow it
  Status s = write_all(fd->get(), content);
  if (s) s = sync_fd(fd->get(), tmp);  // the bytes are on disk before the name points at them
  if (s) s = fd->close();
  if (s && ::rename(tmp.c_str(), path.c_str()) != 0) s = Status::from_errno("rename " + tmp, errno);
  if (!s) {
    ::unlink(tmp.c_str());
    return s;
  }
  auto slash = path.rfind('/');
  return sync_dir(slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash));
}

Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::from_errno("pipe", errno);
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

Status set_no_delay(int fd) {
  int on = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0) return Status::ok();
  if (errno == ENOTSOCK || errno == EOPNOTSUPP || errno == ENOPROTOOPT) return Status::ok();  // not TCP
  return Status::from_errno("setsockopt TCP_NODELAY", errno);
}

Status send_with_fds(int sock, std::string_view data, std::span<const int> fds, std::string_view what) {
  if (fds.size() > kMaxPassedFds) return Status::permanent(fmt::format("{}: too many fds to pass", what));
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxPassedFds * sizeof(int))] = {};
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  for (;;) {
    ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(data.size())) return Status::ok();
    if (n < 0 && errno == EINTR) continue;
    if (n >= 0) return Status::temporary(fmt::format("{}: a short send", what));
    return Status::from_errno(what, errno);
  }
}

ssize_t receive_with_fds(int sock, char* buf, size_t size, int flags, std::vector<Fd>* fds, bool* truncated) {
  iovec iov{buf, size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxPassedFds * sizeof(int))];
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
  if (n < 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds->emplace_back(fd);
    }
  }
  *truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  return n;
}

}  // namespace tikimail
