// queue/sendmail_main.cpp: the sendmail-compatible injector for CGI programs and cron
// (queue/README.md, "sendmail"). The exit status is a sysexits.h code.
#include <signal.h>
#include <sysexits.h>

#include <string>
#include <vector>

#include "common/control.h"
#include "common/log.h"
#include "queue/queue_list.h"
#include "queue/sendmail.h"
#include "queue/sendmail_args.h"

using namespace tikimail;

int main(int argc, char** argv) try {
  Log log("sendmail");
  ::signal(SIGPIPE, SIG_IGN);  // a chain that exits early is an error return, not our death
  auto opts = parse_sendmail_args(std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc));
  if (!opts) {
    log.fatal("{}", opts.error().message());
    log.info("usage: sendmail [-t] [-i] [-f sender] [-F name] [--] [recipient ...]");
    return EX_USAGE;
  }
  if (Status s = enter_home(); !s) {
    log.fatal("{}", s.message());
    return EX_TEMPFAIL;
  }
  if (opts->mode == SendmailMode::kListQueue)  // -bp: mailq's listing, its trouble as 75
    return print_queue("queue", 1, log.program()) == 0 ? EX_OK : EX_TEMPFAIL;
  auto config = SendmailConfig::load();
  if (!config) {
    log.fatal("cannot read configuration: {}", config.error().message());
    return EX_TEMPFAIL;
  }
  return run_sendmail(*opts, *config, Invoker::current(), 0, log);
} catch (...) {
  return EX_TEMPFAIL;  // a bug or out of memory: the caller may retry
}
