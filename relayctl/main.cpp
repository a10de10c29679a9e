// relayctl/main.cpp: the POP-before-SMTP relay db's admin tool: allow, check, list, purge
// (relayctl/README.md). Exit 0 done (check: may relay), 1 check: may not, 100 usage or bad
// IP, 111 temporary.
#include <sys/stat.h>

#include <ctime>
#include <string>
#include <vector>

#include "common/control.h"
#include "common/fd.h"
#include "common/log.h"
#include "relayctl/commands.h"

using namespace tikimail;

int main(int argc, char** argv) try {
  Log log("relayctl");
  // The arguments first: a usage error is 100 wherever the tool runs.
  auto request = parse_relay_request(std::vector<std::string>(argv + 1, argv + argc));
  if (!request) {
    log.fatal("{}", request.error().message());
    return relayctl_exit_code(request.error());
  }
  if (Status s = enter_home(); !s) {  // relay/ and control/ are relative to the prefix
    log.fatal("{}", s.message());
    return relayctl_exit::kTemporary;
  }
  ::umask(027);  // entries get 0640 explicitly; nothing wider
  auto outcome = run_relay_request(*request, ::time(nullptr));
  if (!outcome) {
    log.fatal("{}", outcome.error().message());
    return relayctl_exit_code(outcome.error());
  }
  if (!outcome->event.empty()) log.info("{}", outcome->event);
  if (Status s = write_all(1, outcome->out); !s) {
    log.fatal("stdout: {}", s.message());
    return relayctl_exit::kTemporary;
  }
  return outcome->exit_code;
} catch (...) {
  return relayctl_exit::kTemporary;  // a bug or out of memory: entries are replaced atomically
}
