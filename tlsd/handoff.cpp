// tlsd/handoff.cpp: the control socket of on-request mode, tlsd's side.
#include "tlsd/handoff.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/starttls.h"

namespace tikimail {

Result<SocketPair> make_socket_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return Status::from_errno("socketpair", errno);
  return SocketPair{Fd(fds[0]), Fd(fds[1])};
}

Result<Fd> open_pidfd(pid_t pid) {
  long fd = ::syscall(SYS_pidfd_open, pid, 0);  // O_CLOEXEC always (pidfd_open(2))
  if (fd < 0) return Status::from_errno("pidfd_open", errno);
  return Fd(static_cast<int>(fd));
}

Result<Request> wait_for_request(int control, int child_pidfd) {
  for (;;) {
    pollfd fds[2] = {{child_pidfd, POLLIN, 0}, {control, POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno("poll", errno);
    }
    // An exited program's request is moot: its exit status is the answer.
    if (fds[0].revents != 0) return Request::kExited;
    if (fds[1].revents == 0) continue;
    char byte;
    ssize_t got = ::read(control, &byte, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Status::from_errno("read control socket", errno);
    if (got == 0) return Request::kClosed;
    if (byte != kStartTlsRequest)
      return Status::temporary(fmt::format("control socket: unexpected byte {}", static_cast<int>(byte)));
    return Request::kStartTls;
  }
}

// One sendmsg of `text`, with `fd` attached when it is not -1. A short send of a few hundred
// bytes on a fresh unix socket means the program is gone.
static Status send_answer(int control, std::string text, int fd) {
  if (text.size() > kMaxStartTlsAnswer) text.resize(kMaxStartTlsAnswer);
  const int fds[] = {fd};
  return send_with_fds(control, text, std::span<const int>(fds, fd >= 0 ? 1 : 0), "sendmsg control socket");
}

Status send_accepted(int control, int app, std::string_view version, std::string_view cipher) {
  return send_answer(control, fmt::format("{}{} {}", kStartTlsAccepted, version, cipher), app);
}

Status send_refused(int control, std::string_view reason) {
  return send_answer(control, fmt::format("{}{}", kStartTlsRefused, reason), -1);
}

}  // namespace tikimail
