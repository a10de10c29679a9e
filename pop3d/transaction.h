// pop3d/transaction.h: pop3d-session's work on one connection after a successful login: the
// session lock, the login-interval policy, the Maildir scan and the +OK that answers PASS or
// APOP, then RFC 1939's TRANSACTION and UPDATE states with CAPA (RFC 2449). pop3d/README.md,
// section "pop3d-session", is the contract.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "common/lineio.h"
#include "common/log.h"
#include "common/status.h"
#include "pop3d/login_policy.h"
#include "pop3d/mailbox.h"

namespace tikimail {

inline constexpr size_t kMaxPop3CommandLine = 255;  // RFC 2449 section 4: 255 octets with CRLF
inline constexpr int kMaxPop3BadCommands = 10;      // then "-ERR too many errors" and close

// pop3d-session's exit codes. 1, 2 and 111 belong to checkpassword (pop3d/README.md): pop3d
// reads any other code as "the session has already spoken to the client".
namespace session_exit {
inline constexpr int kQuit = 0;      // after QUIT (whether or not every deletion worked)
inline constexpr int kGone = 3;      // the client went away, timed out or made too many errors
inline constexpr int kRefused = 4;   // IN-USE or LOGIN-DELAY
inline constexpr int kTrouble = 5;   // the Maildir or the configuration failed ([SYS/TEMP])
}  // namespace session_exit

// What the control files say; loaded once.
struct Pop3SessionConfig {
  long timeout = 120;   // control/timeoutpop3d: idle seconds before autologout (seed S10)
  LoginPolicy policy;   // control/pop3loginpolicy (seed S11); empty: no enforcement

  // Reads <control_dir>/timeoutpop3d and <control_dir>/pop3loginpolicy. A missing file is
  // the default; a malformed one an error (the caller answers [SYS/TEMP]).
  static Result<Pop3SessionConfig> load(const std::filesystem::path& control_dir);
};

// Who logged in, from the environment checkpassword passes on.
struct Pop3Login {
  std::string account = "unknown";  // USER
  std::string ip = "unknown";       // TCPREMOTEIP
  bool tls = false;                 // POP3S or TLS is set: the policy's `tls` rules apply

  static Pop3Login from_environment();
};

class Pop3Session {
 public:
  // `maildir` is the folder holding tmp/, new/ and cur/ ("." in the program). The fds are
  // borrowed and should be non-blocking; the session does not close them.
  Pop3Session(const Pop3SessionConfig& config, Pop3Login login, std::string maildir, int in_fd, int out_fd,
              const Log& log);
  // Runs the whole stage and returns its exit code (session_exit). The mailbox lock is held
  // until the object is destroyed.
  int run();

 private:
  struct Entry {
    MailboxMessage message;
    bool deleted = false;
  };
  using Handler = void (Pop3Session::*)(std::string_view arg);
  struct Command {
    std::string_view verb;
    Handler handler;
  };
  static const Command kCommands[];

  // The lock, the policy and the scan; false (with exit_code_ set and the reply queued)
  // when the login must be refused.
  bool open_mailbox();
  void serve();

  void stat(std::string_view arg);
  void list(std::string_view arg);
  void uidl(std::string_view arg);
  void retr(std::string_view arg);
  void top(std::string_view arg);
  void dele(std::string_view arg);
  void noop(std::string_view arg);
  void rset(std::string_view arg);
  void quit(std::string_view arg);
  void capa(std::string_view arg);
  void not_in_this_state(std::string_view arg);

  void reply(std::string_view line);   // queues one line and its CRLF
  void bad_command(std::string_view line);  // counts toward kMaxPop3BadCommands
  bool flush();
  // The message a number argument names, or nullptr after replying why not.
  Entry* find_message(std::string_view number);
  // Streams a message (whole, or TOP's part) as a multi-line answer after `first_line`.
  void send_message(size_t number, Entry& entry, std::string_view first_line,
                    std::optional<uint64_t> body_lines);
  void count_visible(size_t* messages, uint64_t* octets) const;
  size_t number_of(const Entry& e) const { return static_cast<size_t>(&e - messages_.data()) + 1; }

  const Pop3SessionConfig& config_;
  Pop3Login login_;
  std::string maildir_;
  LineReader in_;
  LineWriter out_;
  const Log& log_;
  Fd lock_;
  uint64_t interval_ = 0;  // the policy's interval for this login; advertised when non-zero
  std::vector<Entry> messages_;
  int bad_commands_ = 0;
  bool done_ = false;
  bool writable_ = true;  // false once a write failed or timed out: nothing more is sent
  int exit_code_ = session_exit::kGone;
};

}  // namespace tikimail
