// deliver/main.cpp: the queue runner, supervised and long-running: delivers every entry of
// queue/ into the local Maildirs and keeps the rest for later (deliver/README.md).
#include <signal.h>
#include <unistd.h>

#include "common/control.h"
#include "common/log.h"
#include "deliver/config.h"
#include "deliver/runner.h"

using namespace tikimail;

int main() try {
  Log log("deliver");
  ::signal(SIGPIPE, SIG_IGN);  // a vanished logger is a failed write, not a death
  if (::geteuid() == 0) {      // the run script drops privileges (chpst -u vmail)
    log.fatal("refusing to run as root");
    return 111;
  }
  if (Status s = enter_home(); !s) {
    log.fatal("{}", s.message());
    return 111;
  }
  auto config = DeliverConfig::load();
  if (!config) {
    log.fatal("cannot read configuration: {}", config.error().message());
    return 111;
  }
  Runner runner(*config, log);
  if (Status s = runner.open(); !s) {
    log.fatal("cannot start: {}", s.message());
    return 111;
  }
  return runner.run();  // 0 after SIGTERM, once the running children have finished
} catch (...) {
  return 111;  // a bug or out of memory: the supervisor restarts us, the queue is intact
}
