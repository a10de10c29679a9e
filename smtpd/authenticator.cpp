// smtpd/authenticator.cpp: spawn checkpassword with fd 3, wait with a deadline. The
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
#include "common/log.h"
#include "common/spawn.h"

namespace tikimail {

namespace {

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

  AuthVerdict verdict = AuthVerdict::kTemporary;
  auto devnull = open_file("/dev/null", O_RDWR);
  auto pipe = make_pipe();
  if (devnull && pipe) {
    Deadline deadline = Deadline::after_seconds(timeout_seconds);
    // The client's connection stays with smtpd: checkpassword has nothing to say to it.
    const FdPlacement fds[] = {{devnull->get(), 0}, {devnull->get(), 1}, {pipe->read.get(), 3}};
    auto spawned = spawn(argv, environment_with({"AUTHSERVICE=smtp", "AUTHMECH=" + std::string(mechanism)}), fds);
    if (!spawned) Log("smtpd").warn("SMTP AUTH: {}", spawned.error().message());
    if (spawned) {
      pid_t pid = *spawned;
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
