// pop3d/pop3d-session_main.cpp: the last stage of the POP3 chain, run by checkpassword in the
// account's Maildir: answers the login, serves TRANSACTION and UPDATE (pop3d/README.md).
#include <signal.h>
#include <sodium.h>
#include <unistd.h>

#include "common/control.h"
#include "common/fd.h"
#include "common/lineio.h"
#include "common/log.h"
#include "pop3d/pop3_replies.h"
#include "pop3d/transaction.h"

using namespace tikimail;

namespace {

// Tells the client why before exiting (the reply answers its PASS or APOP).
int refuse(std::string_view reply) {
  (void)write_all(1, std::string(reply) + "\r\n");
  return session_exit::kTrouble;
}

}  // namespace

int main() try {
  Log log("pop3d-session");
  ::signal(SIGPIPE, SIG_IGN);  // a vanished client is an error return, not a death
  // checkpassword has become the mailbox owner; root here means the chain is miswired.
  if (::geteuid() == 0) {
    log.fatal("refusing to run as root");
    return refuse(pop3_session::kRefuseRoot);
  }
  if (::sodium_init() < 0) {  // for the UIDL digests
    log.fatal("sodium_init failed");
    return refuse(pop3_session::kCannotOpen);
  }
  // Control files by absolute path: the working directory stays the Maildir.
  auto config = Pop3SessionConfig::load(tikimail_home() / "control");
  if (!config) {
    log.fatal("cannot read configuration: {}", config.error().message());
    return refuse(pop3_session::kNoConfig);
  }
  // Every wait has a deadline: no read or write may block past it.
  if (Status s = set_nonblocking(0); !s) log.warn("{}", s.message());
  if (Status s = set_nonblocking(1); !s) log.warn("{}", s.message());
  Pop3Session session(*config, Pop3Login::from_environment(), ".", 0, 1, log);
  return session.run();
} catch (...) {
  return session_exit::kTrouble;  // a bug or out of memory: nothing deleted, the client retries
}
