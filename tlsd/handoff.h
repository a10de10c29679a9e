// tlsd/handoff.h: tlsd's side of the on-request (STARTTLS) protocol of tlsd/README.md and
// common/starttls.h: wait for the program's request, answer it with the new connection.
#pragma once

#include <sys/types.h>

#include <string_view>

#include "common/fd.h"
#include "common/status.h"

namespace tikimail {

// An AF_UNIX stream socketpair, both ends O_CLOEXEC (the child dup2()s its end into place).
struct SocketPair {
  Fd ours;
  Fd theirs;
};
Result<SocketPair> make_socket_pair();

enum class Request {
  kStartTls,  // the program wrote kStartTlsRequest
  kExited,    // the program exited (`child` became ready) without asking
  kClosed,    // the program closed the control fd without asking (and may still run)
};

// Waits, without a deadline (the plaintext session may last), until the program asks on
// `control`, or the process behind `child_pidfd` (a pidfd of the program) exits. Any byte
// other than the request is a temporary error, as is a failed poll or read.
Result<Request> wait_for_request(int control, int child_pidfd);

// The answers. Each is one sendmsg; the caller closes `control` afterwards, which ends the
// answer. send_accepted attaches `app` (the program's end of the new socketpair) by
// SCM_RIGHTS. The text is cut to fit kMaxStartTlsAnswer.
Status send_accepted(int control, int app, std::string_view version, std::string_view cipher);
Status send_refused(int control, std::string_view reason);

// A pidfd for `pid` (pidfd_open(2)): readable once that child has exited.
Result<Fd> open_pidfd(pid_t pid);

}  // namespace tikimail
