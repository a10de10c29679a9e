// deliver-remote/connection.cpp: non-blocking connect, and reads and writes over poll(2),
// directly or through OpenSSL.
#include "deliver-remote/connection.h"

#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace tikimail {

Result<Fd> connect_to(const Target& target, Deadline deadline) {
  std::string what = target.ip.find(':') != std::string::npos ? fmt::format("connect [{}]:{}", target.ip, target.port)
                                                              : fmt::format("connect {}:{}", target.ip, target.port);
  Fd fd(::socket(target.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Status::from_errno(what, errno);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&target.addr), target.addr_len) == 0) return fd;
  if (errno != EINPROGRESS && errno != EINTR) return Status::from_errno(what, errno);
  for (;;) {
    pollfd p{fd.get(), POLLOUT, 0};
    int n = ::poll(&p, 1, deadline.poll_ms());
    if (n == 0) return Status::temporary(what + ": timeout");
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno(what, errno);
    }
    break;
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) return Status::from_errno(what, errno);
  if (err != 0) return Status::from_errno(what, err);
  return fd;
}

Connection::Connection(Fd fd) : fd_(std::move(fd)) { (void)set_nonblocking(fd_.get()); }

IoCode Connection::wait(short events, Deadline deadline) {
  for (;;) {
    pollfd p{fd_.get(), events, 0};
    int n = ::poll(&p, 1, deadline.poll_ms());
    if (n > 0) return IoCode::kOk;
    if (n == 0) return IoCode::kTimeout;
    if (errno != EINTR) return IoCode::kError;
  }
}

IoCode Connection::read_some(char* buf, size_t cap, Deadline deadline, size_t* n) {
  *n = 0;
  if (cap == 0) return IoCode::kError;
  for (;;) {
    if (ssl_) {
      ERR_clear_error();
      errno = 0;
      int r = SSL_read(ssl_.get(), buf, static_cast<int>(std::min<size_t>(cap, 1 << 30)));
      if (r > 0) {
        *n = static_cast<size_t>(r);
        return IoCode::kOk;
      }
      int err = SSL_get_error(ssl_.get(), r);
      short events;
      if (err == SSL_ERROR_WANT_READ) events = POLLIN;
      else if (err == SSL_ERROR_WANT_WRITE) events = POLLOUT;
      else if (err == SSL_ERROR_ZERO_RETURN) return IoCode::kEof;
      else if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0) return IoCode::kEof;
      else return IoCode::kError;
      if (IoCode w = wait(events, deadline); w != IoCode::kOk) return w;
      continue;
    }
    ssize_t r = ::read(fd_.get(), buf, cap);
    if (r > 0) {
      *n = static_cast<size_t>(r);
      return IoCode::kOk;
    }
    if (r == 0) return IoCode::kEof;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return errno == ECONNRESET ? IoCode::kEof : IoCode::kError;
    if (IoCode w = wait(POLLIN, deadline); w != IoCode::kOk) return w;
  }
}

IoCode Connection::write_all(std::string_view bytes, Deadline deadline) {
  while (!bytes.empty()) {
    size_t chunk = std::min<size_t>(bytes.size(), 1 << 30);
    if (ssl_) {
      ERR_clear_error();
      int r = SSL_write(ssl_.get(), bytes.data(), static_cast<int>(chunk));
      if (r > 0) {
        bytes.remove_prefix(static_cast<size_t>(r));
        continue;
      }
      int err = SSL_get_error(ssl_.get(), r);
      short events;
      if (err == SSL_ERROR_WANT_READ) events = POLLIN;
      else if (err == SSL_ERROR_WANT_WRITE) events = POLLOUT;
      else return IoCode::kError;
      if (IoCode w = wait(events, deadline); w != IoCode::kOk) return w;
      continue;
    }
    ssize_t r = ::send(fd_.get(), bytes.data(), chunk, MSG_NOSIGNAL);
    if (r < 0 && errno == ENOTSOCK) r = ::write(fd_.get(), bytes.data(), chunk);
    if (r > 0) {
      bytes.remove_prefix(static_cast<size_t>(r));
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) {
      if (IoCode w = wait(POLLOUT, deadline); w != IoCode::kOk) return w;
      continue;
    }
    return IoCode::kError;
  }
  return IoCode::kOk;
}

Result<TlsSession> Connection::start_tls(SSL_CTX* ctx, const TlsPeer& peer, Deadline deadline) {
  return tls_connect(ctx, fd_.get(), peer, deadline, &ssl_);
}

}  // namespace tikimail
