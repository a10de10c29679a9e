// common/starttls.cpp: the program's side of the STARTTLS handoff: one request byte, one
// answer read to EOF with the new connection's fd attached.
#include "common/starttls.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "common/fd.h"
#include "common/lineio.h"
#include "common/spawn.h"

namespace tikimail {

std::optional<TlsRoute> tls_route() {
  const char* tls = std::getenv("TLS");
  const char* control = std::getenv("TLSCTL");
  const char* tlsd = std::getenv("TLSD");
  std::string control_text = control != nullptr ? control : "";
  std::string tlsd_path = tlsd != nullptr ? tlsd : "";
  // Ours alone: no program we exec (queue, checkpassword, pop3d-session) may inherit a line
  // to tlsd, nor a variable naming an fd it does not have.
  ::unsetenv("TLSCTL");
  ::unsetenv("TLSD");
  if (tls != nullptr && *tls != '\0') return std::nullopt;  // already on (implicit mode)
  if (!control_text.empty()) {
    int fd = -1;
    const char* first = control_text.data();
    const char* last = first + control_text.size();
    auto [end, ec] = std::from_chars(first, last, fd);
    if (ec != std::errc() || end != last || fd <= 2) return std::nullopt;
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0) return std::nullopt;  // not open in this process
    ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    return TlsRoute{fd, ""};
  }
  if (!tlsd_path.empty()) return TlsRoute{-1, tlsd_path};
  return std::nullopt;
}

std::optional<TlsInfo> tls_from_environment() {
  const char* version = std::getenv("TLS");
  if (version == nullptr || *version == '\0') return std::nullopt;
  const char* cipher = std::getenv("TLSCIPHER");
  return TlsInfo{version, cipher != nullptr ? cipher : ""};
}

// Reads tlsd's answer up to EOF; the first fd that arrives goes to *passed, extra ones are
// closed (MSG_CMSG_CLOEXEC: none can leak into an exec meanwhile).
static Result<std::string> read_answer(int control, Deadline deadline, Fd* passed) {
  std::string answer;
  for (;;) {
    pollfd p{control, POLLIN, 0};
    int ready = ::poll(&p, 1, deadline.poll_ms());
    if (ready == 0) return Status::permanent("STARTTLS: no answer from tlsd before the deadline");
    if (ready < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno("STARTTLS: poll", errno);
    }
    char bytes[kMaxStartTlsAnswer + 1];
    std::vector<Fd> fds;
    bool truncated = false;
    ssize_t n = receive_with_fds(control, bytes, sizeof bytes, MSG_DONTWAIT, &fds, &truncated);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return Status::from_errno("STARTTLS: recvmsg", errno);
    }
    for (Fd& fd : fds)  // the first one passed is kept; any other is closed
      if (!passed->valid()) *passed = std::move(fd);
    if (n == 0) return answer;
    answer.append(bytes, static_cast<size_t>(n));
    if (answer.size() > kMaxStartTlsAnswer) return Status::permanent("STARTTLS: answer from tlsd too long");
  }
}

Result<TlsInfo> start_tls(int control_fd, int timeout_seconds) {
  Fd control(control_fd);  // closed on every return: the handoff happens once
  Deadline deadline = Deadline::after_seconds(timeout_seconds);
  for (;;) {
    ssize_t n = ::send(control.get(), &kStartTlsRequest, 1, MSG_NOSIGNAL);
    if (n == 1) break;
    if (n < 0 && errno == EINTR) continue;
    return Status::permanent(fmt::format("STARTTLS: request to tlsd: {}", std::strerror(errno)));
  }
  Fd passed;
  auto answer = read_answer(control.get(), deadline, &passed);
  if (!answer) return answer.error();
  if (answer->empty()) return Status::permanent("STARTTLS: tlsd closed the control socket without answering");
  if (answer->front() == kStartTlsRefused)
    return Status::permanent("STARTTLS: handshake failed: " + answer->substr(1));
  size_t space = answer->find(' ');
  if (answer->front() != kStartTlsAccepted || !passed.valid() || space == std::string::npos)
    return Status::permanent("STARTTLS: malformed answer from tlsd");
  TlsInfo info{answer->substr(1, space - 1), answer->substr(space + 1)};
  // From here on fds 0 and 1 are the TLS connection; the client's socket is no longer ours.
  if (::dup2(passed.get(), 0) < 0 || ::dup2(passed.get(), 1) < 0)
    return Status::permanent(fmt::format("STARTTLS: dup2: {}", std::strerror(errno)));
  if (Status s = set_nonblocking(0); !s) return Status::permanent("STARTTLS: " + s.message());
  ::unsetenv("TLSCTL");
  ::setenv("TLS", info.version.c_str(), 1);
  ::setenv("TLSCIPHER", info.cipher.c_str(), 1);
  return info;
}

}  // namespace tikimail

namespace tikimail {

Result<TlsInfo> start_tls(const TlsRoute& route, int timeout_seconds) {
  if (route.control_fd >= 0) return start_tls(route.control_fd, timeout_seconds);
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return Status::permanent(fmt::format("STARTTLS: socketpair: {}", std::strerror(errno)));
  Fd ours(pair[0]);
  Fd theirs(pair[1]);
  const FdPlacement fds[] = {{0, 0}, {1, 1}, {theirs.get(), 3}};
  auto pid = spawn({route.tlsd, "-s"}, environment_with({}, {"TLS", "TLSCIPHER"}), fds);
  if (!pid) return Status::permanent("STARTTLS: " + pid.error().message());
  (void)theirs.close();
  return start_tls(ours.release(), timeout_seconds);
}

}  // namespace tikimail
