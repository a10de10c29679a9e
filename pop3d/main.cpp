// pop3d/main.cpp: the pre-login stage of POP3 on fds 0 and 1 under tcpserver; the credentials
// go to the checkpassword chain named by our arguments (pop3d/README.md).
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>

#include "common/control.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/starttls.h"
#include "pop3d/apop.h"
#include "pop3d/handoff.h"
#include "pop3d/prelogin.h"
#include "pop3d/prelogin_replies.h"

using namespace tikimail;

int main(int argc, char** argv) try {
  Log log("pop3d");
  ::signal(SIGPIPE, SIG_IGN);  // a vanished client is an error return, not a death
  if (::geteuid() == 0) {      // the run script drops privileges (tcpserver -u/-g)
    log.fatal("refusing to run as root");
    return 111;
  }
  if (argc < 2) {
    log.fatal("usage: pop3d checkpassword-program [args...]");
    return 111;
  }
  // The chain is named relative to where we were started; enter_home() may move us.
  std::vector<std::string> chain(argv + 1, argv + argc);
  chain[0] = resolve_program(chain[0], std::filesystem::current_path().string());
  if (Status s = enter_home(); !s) {
    log.fatal("{}", s.message());
    (void)write_all(1, std::string(pop3::kUnavailable) + "\r\n");
    return 111;
  }
  auto config = PreloginConfig::load();
  if (!config) {
    log.fatal("cannot read configuration: {}", config.error().message());
    (void)write_all(1, std::string(pop3::kUnavailable) + "\r\n");
    return 111;
  }
  // Our replies leave at once (no tlsd above us sets it on port 110: tlsd/README.md).
  for (int fd : {0, 1})
    if (Status s = set_no_delay(fd); !s) log.warn("fd {}: {}", fd, s.message());
  // Every wait has a deadline; run_checkpassword gives the child the fds in blocking mode.
  if (Status s = set_nonblocking(0); !s) log.warn("{}", s.message());
  if (Status s = set_nonblocking(1); !s) log.warn("{}", s.message());
  const char* ip = std::getenv("TCPREMOTEIP");
  auto authenticate = [&chain](std::string_view user, std::string_view password, std::string_view timestamp) {
    return run_checkpassword(chain, user, password, timestamp);
  };
  // TLS (tlsd/README.md): on already in implicit mode (995 sets POP3S, tlsd sets TLS); STLS
  // is offered only when tlsd gave us its control fd.
  PreloginTls tls;
  tls.on = std::getenv("TLS") != nullptr || std::getenv("POP3S") != nullptr;
  if (auto route = tls_route(); route && !tls.on) {
    tls.start = [route = *route, timeout = config->timeout] { return start_tls(route, static_cast<int>(timeout)); };
  }
  Prelogin prelogin(*config, 0, 1, authenticate, apop_timestamp(::getpid(), ::time(nullptr), config->me),
                    ip ? ip : "unknown", log, std::move(tls));
  int status = prelogin.run();
  // Our copy of the connection is the last: whatever ended it (our own -ERR after too many
  // failures, a timeout, the session's QUIT, or its [IN-USE] or [LOGIN-DELAY] while the client
  // had pipelined more), the last reply must arrive whole, so unread input must not turn our
  // close into a reset. After a QUIT the client's FIN is already coming: no wait.
  linger_close(0, 1, Deadline::after_seconds(2));
  return status;
} catch (...) {
  return 111;  // a bug or out of memory: the client sees the connection drop
}
