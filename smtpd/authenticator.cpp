// smtpd/authenticator.cpp: fork, fd 3, exec checkpassword, wait with a deadline. The
// credentials pass through a pipe, never the command line or the environment.
#include "smtpd/authenticator.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/fd.h"
#include "common/lineio.h"

extern char** environ;

namespace tikimail {

namespace {

// In the child, between fork and exec: only async-signal-safe calls.
[[noreturn]] void exec_child(char* const* args, char* const* env, int pipe_read, int devnull) {
  // The client's connection stays with smtpd: checkpassword has nothing to say to it.
  if (::dup2(devnull, 0) != 0 || ::dup2(devnull, 1) != 1) ::_exit(111);
  if (pipe_read == 3) {
    ::fcntl(3, F_SETFD, 0);  // dup2(3, 3) would keep close-on-exec
  } else if (::dup2(pipe_read, 3) != 3) {
    ::_exit(111);
  }
  ::signal(SIGPIPE, SIG_DFL);  // an ignored signal stays ignored across exec
  ::execve(args[0], args, env);
  ::_exit(111);
}

AuthVerdict classify(int status) {
  if (!WIFEXITED(status)) return AuthVerdict::kTemporary;
  if (WEXITSTATUS(status) == 0) return AuthVerdict::kOk;
  if (WEXITSTATUS(status) == 1) return AuthVerdict::kWrong;
  return AuthVerdict::kTemporary;  // 2 misuse, 111 temporary, anything else
}

}  // namespace

AuthVerdict run_checkpassword_smtp(const std::vector<std::string>& argv, std::string_view user,
                                   std::string_view password, std::string_view mechanism, long timeout_seconds) {
  if (argv.empty()) return AuthVerdict::kTemporary;
  std::string payload;
  payload.reserve(user.size() + password.size() + 3);
  payload.append(user).push_back('\0');
  payload.append(password).push_back('\0');
  payload.push_back('\0');  // no APOP timestamp

  // Everything the child needs is built before fork: it may only call async-signal-safe code.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings{"AUTHSERVICE=smtp", "AUTHMECH=" + std::string(mechanism)};
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view var(*e);
    if (var.starts_with("AUTHSERVICE=") || var.starts_with("AUTHMECH=")) continue;
    env_strings.emplace_back(var);
  }
  std::vector<char*> env;
  for (auto& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);

  AuthVerdict verdict = AuthVerdict::kTemporary;
  auto devnull = open_file("/dev/null", O_RDWR);
  auto pipe = make_pipe();
  if (devnull && pipe) {
    Deadline deadline = Deadline::after_seconds(timeout_seconds);
    pid_t pid = ::fork();
    if (pid == 0) exec_child(args.data(), env.data(), pipe->read.get(), devnull->get());
    if (pid > 0) {
      (void)pipe->read.close();
      // At most a few hundred bytes: the pipe buffer takes them whole, so this never waits.
      // A child that died before reading gives EPIPE (SIGPIPE is ignored): its status says why.
      (void)write_all(pipe->write.get(), payload);
      (void)pipe->write.close();
      int status = 0;
      for (;;) {
        pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) {
          verdict = classify(status);
          break;
        }
        if (done < 0 && errno != EINTR) break;
        if (deadline.passed()) {
          ::kill(pid, SIGKILL);
          while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
          }
          break;
        }
        ::usleep(5000);  // argon2 takes tens of milliseconds; polling costs nothing here
      }
    }
  }
  ::explicit_bzero(payload.data(), payload.size());
  return verdict;
}

}  // namespace tikimail
