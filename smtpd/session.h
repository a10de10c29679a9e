// smtpd/session.h: one SMTP session on a pair of fds (RFC 5321, 1870, 2920, 3463, 6152).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/lineio.h"
#include "common/log.h"
#include "common/queue_proto.h"
#include "common/recipients.h"
#include "smtpd/replies.h"

namespace tikimail {

inline constexpr size_t kMaxCommandLine = 512;  // RFC 5321 4.5.3.1.4, CRLF included
inline constexpr int kMaxBadCommands = 10;      // then 421 and close

// What the control files say; loaded once per connection.
struct SmtpdConfig {
  std::string me = "localhost";             // control/me
  DomainList rcpthosts;                     // control/rcpthosts
  uint64_t databytes = 20971520;            // control/databytes (seed S5)
  unsigned maxrcpt = 100;                   // control/maxrcpt
  long timeout = 300;                       // control/timeoutsmtpd, seconds idle
  std::string recipients_path = "users/recipients";
  std::vector<std::string> queue_argv{"bin/queue"};  // smtpd's own arguments, if any
  // POP before SMTP (seed S4): set when the environment has POPBEFORESMTP (the port 25
  // service's run script sets it); a client with a live entry in the relay db may relay.
  bool pop_before_smtp = false;
  std::string relay_dir = "relay";          // the relay db (relayctl/README.md)

  // Reads the control files relative to the current directory, and POPBEFORESMTP.
  static Result<SmtpdConfig> load(std::vector<std::string> queue_argv);
};

// What tcpserver says about the connection (DESIGN section 3).
struct Client {
  std::string ip = "unknown";        // TCPREMOTEIP
  std::string host;                  // TCPREMOTEHOST, when tcpserver looked it up
  std::string local_port;            // TCPLOCALPORT
  bool relay_client = false;         // RELAYCLIENT set (even empty): may relay

  static Client from_environment();
};

class Session {
 public:
  // The fds are borrowed; the session does not close them.
  Session(const SmtpdConfig& config, Client client, int in_fd, int out_fd, const Log& log);
  // Greets, serves commands until QUIT, EOF, the idle deadline or too many errors.
  // Returns the exit code: 0 after QUIT, 1 when the client went away or timed out.
  int run();

 private:
  struct Transaction {
    std::string sender;               // envelope form
    std::vector<std::string> rcpts;   // envelope form, no duplicates
    bool any_rcpt_tried = false;
  };
  enum class RcptClass { kLocal, kRemote };

  using Handler = void (Session::*)(std::string_view arg);
  struct Command {
    std::string_view verb;
    Handler handler;
  };
  static const Command kCommands[];

  void helo(std::string_view arg);
  void ehlo(std::string_view arg);
  void mail(std::string_view arg);
  void rcpt(std::string_view arg);
  void data(std::string_view arg);
  void rset(std::string_view arg);
  void noop(std::string_view arg);
  void quit(std::string_view arg);
  void vrfy(std::string_view arg);
  void help(std::string_view arg);
  void not_implemented(std::string_view arg);

  void reply(smtp::Reply r);
  void reply_text(int code, std::string_view text);
  void bad_command(smtp::Reply r);  // counts toward kMaxBadCommands
  bool flush();
  bool is_local_domain(std::string_view domain) const;
  // RELAYCLIENT, or (with pop_before_smtp) a live relay db entry for the client's IP, looked
  // up once per connection at the first recipient that needs it. A db error is no entry.
  bool may_relay();
  bool local_recipient_exists(const std::string& address, bool* list_failed);
  std::string received_header(const std::string& msgid) const;
  // Reads the body after 354 into the chain; false when the session must end.
  bool receive_body(const std::string& msgid);

  const SmtpdConfig& config_;
  Client client_;
  LineReader in_;
  LineWriter out_;
  const Log& log_;
  std::optional<std::string> helo_;
  bool esmtp_ = false;
  std::optional<Transaction> tx_;
  std::optional<Recipients> recipients_;  // loaded at the first local RCPT
  std::optional<bool> pop_relay_;         // the relay db's answer, once asked
  int bad_commands_ = 0;
  bool quit_ = false;
  int exit_code_ = 1;
};

}  // namespace tikimail
