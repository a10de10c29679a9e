// tlsd/program.cpp: options, privilege changes, and the fork/exec of the protocol program.
#include "tlsd/program.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string_view>

#include "common/log.h"

namespace tikimail {

namespace {

constexpr const char* kUsage = "usage: tlsd [-i] [-u UID -g GID] [-U UID -G GID] -- prog [args...], or tlsd -s";

std::optional<unsigned> parse_id(const char* text) {
  std::string_view s(text);
  unsigned id = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return id;
}

}  // namespace

Result<Options> parse_options(int argc, const char* const* argv) {
  Options options;
  std::optional<unsigned> u, g, big_u, big_g;
  int i = 1;
  for (; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.empty() || arg[0] != '-') break;
    if (arg == "-i") {
      options.implicit = true;
      continue;
    }
    if (arg == "-s") {
      options.started = true;
      continue;
    }
    if (arg != "-u" && arg != "-g" && arg != "-U" && arg != "-G")
      return Status::permanent(fmt::format("unknown option {}; {}", log_safe(arg), kUsage));
    if (i + 1 >= argc) return Status::permanent(fmt::format("{} needs a number; {}", arg, kUsage));
    auto id = parse_id(argv[++i]);
    if (!id) return Status::permanent(fmt::format("{} {}: not a number; {}", arg, log_safe(argv[i]), kUsage));
    (arg == "-u" ? u : arg == "-g" ? g : arg == "-U" ? big_u : big_g) = id;
  }
  if (u.has_value() != g.has_value() || big_u.has_value() != big_g.has_value())
    return Status::permanent(fmt::format("-u and -g (and -U and -G) go together; {}", kUsage));
  if (u && *u == 0) return Status::permanent("-u 0: the program never runs as root");
  if (u) options.program = Ids{*u, *g};
  if (big_u) options.self = Ids{*big_u, *big_g};
  for (; i < argc; ++i) options.argv.emplace_back(argv[i]);
  if (options.started) {
    // Run by smtpd or pop3d itself, which is unprivileged: nothing to switch, nothing to run.
    if (options.implicit || u || big_u || !options.argv.empty())
      return Status::permanent(fmt::format("-s takes no other option and no program; {}", kUsage));
    return options;
  }
  if (options.argv.empty()) return Status::permanent(fmt::format("no program given; {}", kUsage));
  return options;
}

Status drop_privileges(const Ids& ids) {
  if (::geteuid() != 0 && ::getuid() == ids.uid && ::geteuid() == ids.uid && ::getgid() == ids.gid &&
      ::getegid() == ids.gid)
    return Status::ok();
  if (::setgroups(1, &ids.gid) != 0) return Status::from_errno("setgroups", errno);
  if (::setgid(ids.gid) != 0) return Status::from_errno("setgid", errno);
  if (::setuid(ids.uid) != 0) return Status::from_errno("setuid", errno);
  // setuid as root sets the real, effective and saved ids: there must be no way back.
  if (ids.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0))
    return Status::temporary("could still regain root after dropping privileges");
  if (::getuid() != ids.uid || ::geteuid() != ids.uid || ::getgid() != ids.gid || ::getegid() != ids.gid)
    return Status::temporary("the ids did not change as asked");
  return Status::ok();
}

Result<pid_t> start_program(const std::vector<std::string>& argv, const std::optional<Ids>& ids,
                            const ChildSetup& setup) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return Status::from_errno("fork", errno);
  if (pid > 0) return pid;

  Log log("tlsd");
  ::signal(SIGPIPE, SIG_DFL);  // tlsd ignores it; an ignored disposition survives exec
  if (setup.stdio >= 0 && (::dup2(setup.stdio, 0) < 0 || ::dup2(setup.stdio, 1) < 0)) {
    log.fatal("dup2: {}", std::strerror(errno));
    ::_exit(111);
  }
  if (setup.control >= 0) {
    int flags = ::fcntl(setup.control, F_GETFD);
    if (flags < 0 || ::fcntl(setup.control, F_SETFD, flags & ~FD_CLOEXEC) < 0) {
      log.fatal("fcntl control fd: {}", std::strerror(errno));
      ::_exit(111);
    }
  }
  for (const auto& name : setup.unsetenv) ::unsetenv(name.c_str());
  for (const auto& [name, value] : setup.setenv) ::setenv(name.c_str(), value.c_str(), 1);
  if (ids) {
    if (Status s = drop_privileges(*ids); !s) {
      log.fatal("cannot drop privileges for {}: {}", log_safe(argv[0]), s.message());
      ::_exit(111);
    }
  }
  if (::geteuid() == 0 || ::getuid() == 0) {
    log.fatal("refusing to run {} as root: give -u and -g", log_safe(argv[0]));
    ::_exit(111);
  }
  ::execvp(args[0], args.data());
  log.fatal("cannot run {}: {}", log_safe(argv[0]), std::strerror(errno));
  ::_exit(111);
}

int wait_program(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 111;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 111;
}

}  // namespace tikimail
