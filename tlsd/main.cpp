// tlsd/main.cpp: TLS for one connection on fds 0 and 1 under tcpserver, at once (-i) or when
// the protocol program asks; the program never holds the key (tlsd/README.md).
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "common/control.h"
#include "common/log.h"
#include "tlsd/program.h"
#include "tlsd/serve.h"

using namespace tikimail;

int main(int argc, char** argv) try {
  Log log("tlsd");
  ::signal(SIGPIPE, SIG_IGN);  // a vanished client or program is an error return, not a death
  auto options = parse_options(argc, argv);
  if (!options) {
    log.fatal("{}", options.error().message());
    return 111;
  }
  if (::geteuid() == 0 && options->started) {
    log.fatal("refusing to run as root with -s: the program that starts tlsd -s is never root");
    return 111;
  }
  if (::geteuid() == 0 && !options->started && !options->program) {
    log.fatal("refusing to run {} as root: give -u and -g", log_safe(options->argv[0]));
    return 111;
  }
  // Relative paths, the program's included, are relative to the prefix from here on.
  if (Status s = enter_home(); !s) {
    log.fatal("{}", s.message());
    return 111;
  }
  const char* ip = std::getenv("TCPREMOTEIP");
  // The control files are read by serve(): at start with -i, at the program's request without.
  return serve(*options, ip != nullptr && *ip != '\0' ? log_safe(ip, 64) : std::string("unknown"), log);
} catch (...) {
  return 111;  // a bug or out of memory: the client sees the connection drop
}
