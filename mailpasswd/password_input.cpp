// mailpasswd/password_input.cpp: reading a password from a pipe or from the terminal.
#include "mailpasswd/password_input.h"

#include <fcntl.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

#include <sodium.h>

#include "common/fd.h"

namespace tikimail {

namespace {

// The signal that interrupted a terminal read; the handler only records it.
volatile sig_atomic_t caught_signal = 0;
void record_signal(int sig) { caught_signal = sig; }
constexpr int kPromptSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

// One line from `fd`. With `stop_on_signal`, EINTR ends the read (a terminal prompt the
// user interrupted); without it, EINTR is retried.
Result<Secret> read_line(int fd, bool stop_on_signal) {
  Secret line;
  bool any = false;
  char c = 0;
  Status status;
  for (;;) {
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0) {
      if (errno == EINTR && !stop_on_signal) continue;
      status = errno == EINTR ? Status::permanent("interrupted") : Status::from_errno("read password", errno);
      break;
    }
    if (n == 0 || c == '\n') {
      any = any || n == 1;
      break;
    }
    any = true;
    if (!line.push_back(c)) {
      status = Status::permanent(fmt::format("password longer than {} bytes", kMaxPassword));
      break;
    }
  }
  sodium_memzero(&c, sizeof c);
  if (!status) return status;
  if (!any) return Status::permanent("no password on standard input");
  if (!line.empty() && line.view().back() == '\r') line.pop_back();
  if (Status s = check_password(line.view()); !s) return s;
  return line;
}

// Echo off and the prompt signals caught while it lives; restore() (or the destructor)
// puts both back as they were.
class QuietTerminal {
 public:
  explicit QuietTerminal(int tty) : tty_(tty) {}
  QuietTerminal(const QuietTerminal&) = delete;
  QuietTerminal& operator=(const QuietTerminal&) = delete;
  ~QuietTerminal() { restore(); }

  Status start() {
    if (::tcgetattr(tty_, &saved_) != 0) return Status::from_errno("tcgetattr /dev/tty", errno);
    struct sigaction ours = {};
    ours.sa_handler = record_signal;  // no SA_RESTART: read(2) returns EINTR
    sigemptyset(&ours.sa_mask);
    caught_signal = 0;
    for (size_t i = 0; i < std::size(kPromptSignals); ++i) {
      ::sigaction(kPromptSignals[i], nullptr, &old_[i]);
      if (old_[i].sa_handler != SIG_IGN) ::sigaction(kPromptSignals[i], &ours, nullptr);
    }
    active_ = true;
    struct termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;  // the Enter key still moves to the next line
    // TCSAFLUSH: anything typed before echo went off was shown, so it is not taken.
    if (::tcsetattr(tty_, TCSAFLUSH, &quiet) != 0) return Status::from_errno("tcsetattr /dev/tty", errno);
    return Status::ok();
  }

  void restore() {
    if (!active_) return;
    active_ = false;
    ::tcsetattr(tty_, TCSANOW, &saved_);
    for (size_t i = 0; i < std::size(kPromptSignals); ++i) ::sigaction(kPromptSignals[i], &old_[i], nullptr);
  }

 private:
  int tty_;
  bool active_ = false;
  struct termios saved_ = {};
  struct sigaction old_[std::size(kPromptSignals)] = {};
};

// Echo off, then the prompt (so nothing typed after it is echoed), one line, echo back on.
// An interrupting signal acts only after the terminal is restored.
Result<Secret> read_quietly(int tty, std::string_view prompt) {
  QuietTerminal quiet(tty);
  if (Status s = quiet.start(); !s) return s;
  if (Status s = write_all(tty, prompt); !s) return s;
  auto line = read_line(tty, /*stop_on_signal=*/true);
  quiet.restore();
  if (caught_signal != 0) {
    (void)write_all(tty, "\n");
    ::raise(caught_signal);  // the old action now: usually the default, which ends us
  }
  return line;
}

}  // namespace

Result<Secret> read_password_line(int fd) { return read_line(fd, /*stop_on_signal=*/false); }

Result<Secret> prompt_password(std::string_view address) {
  auto tty = open_file("/dev/tty", O_RDWR | O_NOCTTY);
  if (!tty) return Status::permanent(fmt::format("no terminal to ask for a password: {}", tty.error().message()));
  auto first = read_quietly(tty->get(), fmt::format("New password for {}: ", address));
  if (!first) return first.error();
  auto second = read_quietly(tty->get(), "Retype the new password: ");
  if (!second) return second.error();
  if (first->view() != second->view()) return Status::permanent("the two passwords differ");
  return std::move(*first);
}

Result<Secret> read_new_password(std::string_view address) {
  if (::isatty(0)) return prompt_password(address);
  return read_password_line(0);
}

}  // namespace tikimail
