// tlsd/serve.h: one connection from start to exit status, in implicit or on-request mode
// (tlsd/README.md: the order of handshake, fork, privilege drop, relay and reaping).
#pragma once

#include <string>

#include "common/log.h"
#include "common/status.h"
#include "tlsd/context.h"
#include "tlsd/program.h"

namespace tikimail {

struct ServeConfig {
  TlsConfig tls;
  long handshake_seconds = 60;  // control/timeouttlshandshake
  long idle_seconds = 1200;     // control/timeouttls: no byte either way for this long
  std::string ip = "unknown";   // $TCPREMOTEIP, for the log
  // Reads the control files (relative to the prefix) and the environment.
  static Result<ServeConfig> load();
};

// Serves the client on fds 0 (read) and 1 (write) and returns tlsd's exit status: the
// program's, 111 when tlsd cannot start (no certificate, fork failed, ...), 1 when an
// implicit-mode handshake fails (the program never ran).
int serve(const Options& options, const ServeConfig& config, const Log& log);

}  // namespace tikimail
