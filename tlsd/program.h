// tlsd/program.h: tlsd's command line, the privileges of tlsd and of the program it runs,
// and running that program (fork, fds, environment, exec) and reaping it.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tikimail {

// A uid and gid to switch to; both or neither are given.
struct Ids {
  uid_t uid = 0;
  gid_t gid = 0;
};

struct Options {
  bool implicit = false;          // -i: handshake at once (465, 995)
  bool started = false;           // -s: started by the program on STARTTLS (control socket on fd 3)
  std::optional<Ids> program;     // -u UID -g GID: what the program runs as
  std::optional<Ids> self;        // -U UID -G GID: what tlsd drops to after the handshake
  std::vector<std::string> argv;  // after "--": the program and its arguments
};

// Parses `tlsd [-i] [-u UID -g GID] [-U UID -G GID] [--] prog args...` or `tlsd -s` alone. Ids are decimal
// numbers, as tcpserver's -u/-g; -u without -g (or -U without -G) is an error, and so is a
// uid of 0 for -u (the program never runs as root). Errors are permanent with a usage text.
Result<Options> parse_options(int argc, const char* const* argv);

// Switches this process to `ids` for good (setgroups to the one gid, setgid, setuid), then
// checks that root cannot be regained. When we are not root and already run as exactly
// `ids`, nothing changes (an ordinary user's install). Errors are temporary.
Status drop_privileges(const Ids& ids);

// What the child gets before it execs the program.
struct ChildSetup {
  int stdio = -1;    // dup2()ed onto fds 0 and 1 when >= 0 (implicit mode: the app socket)
  int control = -1;  // kept open across exec (on-request mode: the control socket)
  std::vector<std::pair<std::string, std::string>> setenv;  // TLS=..., TLSCTL=...
  std::vector<std::string> unsetenv;                         // what must not leak through
};

// Forks; the child applies `setup`, resets SIGPIPE to its default, drops to `ids` when
// given, refuses to go on as root (exit 111 with a log line), and execs argv[0] (execvp: a
// relative path with a '/' is relative to the working directory, the prefix). A failed exec
// exits 111. Every other fd tlsd opened is O_CLOEXEC, so the program sees only 0, 1, 2, the
// control fd and what tcpserver passed in. Returns the child's pid.
Result<pid_t> start_program(const std::vector<std::string>& argv, const std::optional<Ids>& ids,
                            const ChildSetup& setup);

// Waits for `pid` and returns its exit status; a program killed by a signal gives 111.
int wait_program(pid_t pid);

}  // namespace tikimail
