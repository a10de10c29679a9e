// tlsd/serve.h: one connection from start to exit status, in implicit or on-request mode
// (tlsd/README.md: the order of handshake, fork, privilege drop, relay and reaping, and when
// the TLS context is built).
#pragma once

#include <string>

#include "common/log.h"
#include "common/status.h"
#include "tlsd/context.h"
#include "tlsd/program.h"

namespace tikimail {

// What tlsd reads from control/ for TLS: at start in implicit mode, only when the program asks
// in on-request mode (no TLS work before a request: most SMTP clients never send STARTTLS).
struct ServeConfig {
  TlsConfig tls;
  long handshake_seconds = 60;  // control/timeouttlshandshake
  long idle_seconds = 1200;     // control/timeouttls: no byte either way for this long
  // Reads the control files, relative to the prefix. Errors are temporary.
  static Result<ServeConfig> load();
};

// `tlsd -s`: the control socket from the program that started us is on this fd.
inline constexpr int kStartedControlFd = 3;

// Serves the client on fds 0 (read) and 1 (write) and returns tlsd's exit status: the
// program's, 111 when tlsd cannot start (no certificate, fork failed, ...), 1 when an
// implicit-mode handshake fails (the program never ran). `ip` is the client's, for the log.
// Relative paths (control/, the program) are relative to the working directory, the prefix.
int serve(const Options& options, const std::string& ip, const Log& log);

}  // namespace tikimail
