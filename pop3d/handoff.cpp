// pop3d/handoff.cpp: fork, fd 3, exec, wait. The credentials pass through a pipe, never the
// command line or the environment (both visible in /proc to other users).
#include "pop3d/handoff.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/fd.h"

namespace tikimail {

namespace {

// Clears O_NONBLOCK on `fd` and gives it back when the child is done: the child shares the
// file description, and the session expects the socket as tcpserver made it.
class BlockingWhileChild {
 public:
  explicit BlockingWhileChild(int fd) : fd_(fd), flags_(::fcntl(fd, F_GETFL)) {
    if (flags_ >= 0 && (flags_ & O_NONBLOCK) != 0) ::fcntl(fd_, F_SETFL, flags_ & ~O_NONBLOCK);
  }
  ~BlockingWhileChild() {
    if (flags_ >= 0 && (flags_ & O_NONBLOCK) != 0) ::fcntl(fd_, F_SETFL, flags_);
  }

 private:
  int fd_;
  int flags_;
};

// In the child, between fork and exec: only async-signal-safe calls.
[[noreturn]] void exec_child(const std::vector<char*>& args, int pipe_read) {
  if (pipe_read == 3) {
    ::fcntl(3, F_SETFD, 0);  // dup2(3, 3) would keep close-on-exec
  } else if (::dup2(pipe_read, 3) != 3) {
    ::_exit(111);
  }
  ::signal(SIGPIPE, SIG_DFL);  // an ignored signal stays ignored across exec
  ::execvp(args[0], args.data());
  ::_exit(111);
}

}  // namespace

AuthOutcome classify_checkpassword_status(int status) {
  if (!WIFEXITED(status)) return AuthOutcome::kTemporary;  // killed by a signal
  switch (WEXITSTATUS(status)) {
    case 1: return AuthOutcome::kWrong;
    case 2: return AuthOutcome::kMisuse;
    case 111: return AuthOutcome::kTemporary;
    default: return AuthOutcome::kSessionDone;
  }
}

AuthOutcome run_checkpassword(const std::vector<std::string>& argv, std::string_view user, std::string_view password,
                              std::string_view timestamp) {
  if (argv.empty()) return AuthOutcome::kTemporary;
  std::string payload;
  payload.reserve(user.size() + password.size() + timestamp.size() + 3);
  payload.append(user).push_back('\0');
  payload.append(password).push_back('\0');
  payload.append(timestamp).push_back('\0');

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  auto pipe = make_pipe();
  if (!pipe) return AuthOutcome::kTemporary;
  BlockingWhileChild in(0), out(1);
  pid_t pid = ::fork();
  if (pid == 0) exec_child(args, pipe->read.get());
  AuthOutcome outcome = AuthOutcome::kTemporary;
  if (pid > 0) {
    (void)pipe->read.close();
    // At most 512 bytes: the pipe buffer takes them whole, so this never waits for the child.
    // A child that died before reading gives EPIPE (SIGPIPE is ignored): its status says why.
    (void)write_all(pipe->write.get(), payload);
    (void)pipe->write.close();
    int status = 0;
    pid_t done;
    do {
      done = ::waitpid(pid, &status, 0);
    } while (done < 0 && errno == EINTR);
    if (done == pid) outcome = classify_checkpassword_status(status);
  }
  ::explicit_bzero(payload.data(), payload.size());
  return outcome;
}

std::string resolve_program(std::string_view program, std::string_view cwd) {
  if (program.empty() || program.front() == '/' || program.find('/') == std::string_view::npos)
    return std::string(program);
  std::string out(cwd);
  if (out.empty() || out.back() != '/') out.push_back('/');
  out.append(program);
  return out;
}

}  // namespace tikimail
