// smtpd/main.cpp: SMTP on fds 0 and 1 under tcpserver; each accepted message goes to the
// queue chain named by our arguments (smtpd/README.md).
#include <signal.h>
#include <unistd.h>

#include "common/control.h"
#include "common/fd.h"
#include "common/lineio.h"
#include "common/log.h"
#include "smtpd/session.h"

using namespace tikimail;

int main(int argc, char** argv) try {
  Log log("smtpd");
  ::signal(SIGPIPE, SIG_IGN);  // a vanished client or chain is an error return, not a death
  if (::geteuid() == 0) {      // the run script drops privileges (tcpserver -u/-g)
    log.fatal("refusing to run as root");
    return 111;
  }
  if (Status s = enter_home(); !s) {
    log.fatal("{}", s.message());
    (void)write_all(1, "421 4.3.0 Service temporarily unavailable\r\n");
    return 111;
  }
  auto config = SmtpdConfig::load(std::vector<std::string>(argv + 1, argv + argc));
  if (!config) {
    log.fatal("cannot read configuration: {}", config.error().message());
    (void)write_all(1, "421 4.3.0 Service temporarily unavailable\r\n");
    return 111;
  }
  // SMTP AUTH goes through checkpassword's verify-only mode: smtpd cannot read users/accounts
  // (a root install lets smtpd's group tiki-auth run it).
  std::vector<std::string> checkpassword{"bin/checkpassword"};
  long auth_timeout = config->timeout;
  config->authenticate = [checkpassword, auth_timeout](std::string_view user, std::string_view password,
                                                       std::string_view mechanism) {
    return run_checkpassword_smtp(checkpassword, user, password, mechanism, auth_timeout);
  };
  // Our replies leave at once (no tlsd above us sets it on the plaintext ports: tlsd/README.md).
  for (int fd : {0, 1})
    if (Status s = set_no_delay(fd); !s) log.warn("fd {}: {}", fd, s.message());
  // Every wait has a deadline: no read or write may block past it.
  if (Status s = set_nonblocking(0); !s) log.warn("{}", s.message());
  if (Status s = set_nonblocking(1); !s) log.warn("{}", s.message());
  Session session(*config, Client::from_environment(), 0, 1, log);
  int status = session.run();
  if (status != 0) linger_close(0, 1, Deadline::after_seconds(2));  // our 421 must arrive whole
  return status;
} catch (...) {
  return 111;  // a bug or out of memory: the client sees the connection drop and retries
}
