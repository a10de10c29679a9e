// common/starttls.h: the protocol program's side of tlsd's STARTTLS handoff, and the bytes
// of that handoff, which tlsd/handoff.cpp speaks from the other side (tlsd/README.md).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "common/status.h"

namespace tikimail {

// The control protocol on the AF_UNIX stream socket named by $TLSCTL. The program writes
// the one byte kStartTlsRequest. tlsd answers exactly once and then closes its end, so the
// answer ends at EOF: kStartTlsAccepted followed by "<version> <cipher>" with the program's
// end of a new socketpair attached to the first byte (SCM_RIGHTS), or kStartTlsRefused
// followed by a reason for the log. An answer is at most kMaxStartTlsAnswer bytes.
inline constexpr char kStartTlsRequest = 'S';
inline constexpr char kStartTlsAccepted = 'Y';
inline constexpr char kStartTlsRefused = 'N';
inline constexpr size_t kMaxStartTlsAnswer = 512;

// How a STARTTLS of this process reaches tlsd, when TLS is not yet on:
//  - tlsd runs above us in on-request mode (`tlsd -u ... prog`): `control_fd` is the control
//    socket it gave us in $TLSCTL (a decimal fd number above 2);
//  - or we start tlsd ourselves when the client asks (smtpd and pop3d straight under
//    tcpserver, the run scripts' default): `tlsd` is its path from $TLSD. It runs as
//    `tlsd -s` with the client's socket on fds 0 and 1 and its end of a new control
//    socketpair on fd 3, and then speaks the same control protocol (tlsd/README.md). A
//    plaintext session so costs no tlsd process at all.
struct TlsRoute {
  int control_fd = -1;
  std::string tlsd;
};

// The route from $TLSCTL (preferred when both are set) or $TLSD; nullopt when TLS is already
// on ($TLS set), when neither is set, or when TLSCTL is malformed or not open. Call it once:
// it marks the control fd close-on-exec and removes TLSCTL and TLSD from the environment, so
// that nothing this process execs (queue, checkpassword, pop3d-session) inherits them.
std::optional<TlsRoute> tls_route();

struct TlsInfo {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_256_GCM_SHA384"
};

// Asks tlsd for TLS on the control fd and waits (at most timeout_seconds, which should be
// longer than tlsd's handshake limit, control/timeouttlshandshake) for its answer.
// On success: the new connection is on fds 0 and 1 (both O_NONBLOCK, as the callers use
// deadlines; the client's TCP socket is no longer open in this process), the control fd is
// closed, TLSCTL is unset, and TLS=<version> and TLSCIPHER=<cipher> are set in the
// environment (so that programs we exec, like checkpassword, see them).
// The caller has already sent its go-ahead reply and thrown its input buffer away.
// A failure is permanent (the client is gone or did not speak TLS, tlsd's reason is in the
// message; or the deadline passed): the caller exits. The control fd is closed either way.
Result<TlsInfo> start_tls(int control_fd, int timeout_seconds);

// start_tls over `route`: with a tlsd path, first runs `tlsd -s` (common/spawn.h) with the
// client's socket (our fds 0 and 1) and its end of a new control socketpair on fd 3. That tlsd
// is our child and outlives us until the client or we close; nobody waits for it (it exits
// on its own, and the init process reaps it once we are gone).
Result<TlsInfo> start_tls(const TlsRoute& route, int timeout_seconds);

// The TLS state of this process for implicit mode or after start_tls: from $TLS/$TLSCIPHER.
// nullopt when TLS is unset or empty.
std::optional<TlsInfo> tls_from_environment();

}  // namespace tikimail
