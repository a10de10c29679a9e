// common/spawn.cpp: posix_spawn with file actions for the fd placements.
#include "common/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "common/fd.h"

extern char** environ;

namespace tikimail {

namespace {

std::string_view name_of(std::string_view var) { return var.substr(0, var.find('=')); }

bool named_in(std::string_view name, const std::vector<std::string>& vars) {
  for (const auto& v : vars)
    if (name_of(v) == name) return true;
  return false;
}

// posix_spawn's attribute and file-action objects, destroyed on every path.
struct SpawnSetup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  bool attr_ok = false;
  bool actions_ok = false;
  ~SpawnSetup() {
    if (actions_ok) posix_spawn_file_actions_destroy(&actions);
    if (attr_ok) posix_spawnattr_destroy(&attr);
  }
};

}  // namespace

std::vector<std::string> environment_with(const std::vector<std::string>& set,
                                          const std::vector<std::string>& unset) {
  std::vector<std::string> env = set;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view name = name_of(*e);
    if (named_in(name, set) || named_in(name, unset)) continue;
    env.emplace_back(*e);
  }
  return env;
}

Result<pid_t> spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    std::span<const FdPlacement> fds) {
  if (argv.empty()) return Status::temporary("spawn: no program");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  // A source that an earlier placement overwrites is copied out of the way first (closed
  // with `moved` after the spawn; close-on-exec, so the child never sees the copy itself).
  std::vector<Fd> moved;
  std::vector<FdPlacement> plan(fds.begin(), fds.end());
  for (size_t i = 0; i < plan.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (plan[i].from != plan[j].to) continue;
      int copy = ::fcntl(plan[i].from, F_DUPFD_CLOEXEC, 10);
      if (copy < 0) return Status::from_errno("spawn " + argv[0] + ": fcntl", errno);
      moved.emplace_back(copy);
      plan[i].from = copy;
      break;
    }
  }

  SpawnSetup s;
  int rc = posix_spawnattr_init(&s.attr);
  if (rc != 0) return Status::from_errno("posix_spawnattr_init", rc);
  s.attr_ok = true;
  rc = posix_spawn_file_actions_init(&s.actions);
  if (rc != 0) return Status::from_errno("posix_spawn_file_actions_init", rc);
  s.actions_ok = true;
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&s.attr, &all);
  posix_spawnattr_setsigmask(&s.attr, &none);
  posix_spawnattr_setflags(&s.attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  for (const auto& p : plan) {
    // dup2 onto itself clears close-on-exec (glibc 2.29 and later), which is what we want.
    rc = posix_spawn_file_actions_adddup2(&s.actions, p.from, p.to);
    if (rc != 0) return Status::from_errno("posix_spawn_file_actions_adddup2", rc);
  }
  pid_t pid = -1;
  rc = ::posix_spawn(&pid, args[0], &s.actions, &s.attr, args.data(), envp.data());
  if (rc != 0) return Status::from_errno("cannot run " + argv[0], rc);
  return pid;
}

}  // namespace tikimail
