// common/spawn.h: starting a program with some of our fds in place, without copying this
// process (posix_spawn: the child shares our memory until it execs, so no page tables are
// copied and neither side takes copy-on-write faults). Used for every program a
// per-connection or per-message process runs: the queue chain, checkpassword, tlsd.
#pragma once

#include <sys/types.h>

#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace tikimail {

// Put our fd `from` on fd number `to` in the child.
struct FdPlacement {
  int from;
  int to;
};

// Our environment with each NAME=value of `set` replacing the variable of that NAME (or
// added), and every variable named in `unset` left out.
std::vector<std::string> environment_with(const std::vector<std::string>& set,
                                          const std::vector<std::string>& unset = {});

// Runs argv[0] (a path: relative to the working directory when it has no leading '/', no
// PATH search) with `env` and the fds of `fds` placed, in order; a source that is also an
// earlier target is moved out of the way first, so any placement works. Every other fd of
// ours must be close-on-exec (tikimail opens everything O_CLOEXEC). The child starts with
// every signal at its default disposition and none blocked. Errors (no such program, not
// executable, out of processes) are temporary and name the program; on success the caller
// reaps the returned pid.
Result<pid_t> spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    std::span<const FdPlacement> fds);

}  // namespace tikimail
