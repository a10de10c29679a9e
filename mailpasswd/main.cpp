// mailpasswd/main.cpp: add, delete, re-password and list accounts in users/accounts, keeping
// users/recipients in step (mailpasswd/README.md). Exit 0 done, 100 permanent, 111 temporary.
#include <sys/stat.h>

#include <string>
#include <vector>

#include "common/control.h"
#include "common/fd.h"
#include "common/log.h"
#include "mailpasswd/commands.h"
#include "mailpasswd/password_input.h"

using namespace tikimail;

int main(int argc, char** argv) try {
  Log log("mailpasswd");
  auto request = parse_request(std::vector<std::string>(argv + 1, argv + argc));
  if (!request) {
    log.fatal("{}", request.error().message());
    return 100;
  }
  if (Status s = enter_home(); !s) {
    log.fatal("{}", s.message());
    return 111;
  }
  ::umask(022);  // the files and directories get their modes explicitly; nothing wider
  auto out = run_request(*request, read_new_password);
  if (!out) {
    log.fatal("{}", out.error().message());
    return exit_code_for(out.error());
  }
  if (Status s = write_all(1, *out); !s) {
    log.fatal("stdout: {}", s.message());
    return 111;
  }
  return 0;
} catch (...) {
  return 111;  // a bug or out of memory: nothing half-written (every file is replaced atomically)
}
