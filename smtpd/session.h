// smtpd/session.h: one SMTP session on a pair of fds (RFC 5321, 1870, 2920, 3207, 3463,
// 4954, 6152).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/lineio.h"
#include "common/log.h"
#include "common/queue_proto.h"
#include "common/recipients.h"
#include "common/starttls.h"
#include "smtpd/auth_senders.h"
#include "smtpd/authenticator.h"
#include "smtpd/replies.h"

namespace tikimail {

inline constexpr size_t kMaxCommandLine = 512;  // RFC 5321 4.5.3.1.4, CRLF included
// MAIL may be longer: RFC 1870 section 4 adds 26 octets for SIZE, RFC 4954 section 3 adds 500
// for AUTH=, and smtpd advertises both.
inline constexpr size_t kMaxMailLine = kMaxCommandLine + 26 + 500;
inline constexpr int kMaxBadCommands = 10;      // then 421 and close
// An AUTH response line: base64 of at most 512 bytes of credentials is 684 octets.
inline constexpr size_t kMaxAuthLine = 1024;

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
  // Submission (587, 465): SUBMISSION set in the environment. AUTH is required before MAIL
  // and POP before SMTP is never honoured.
  bool submission = false;
  AuthSenders authsenders;                  // control/authsenders
  // SMTP AUTH: checks a password; empty means AUTH is neither offered nor accepted (504).
  // main wires run_checkpassword_smtp (smtpd/authenticator.h); tests give a fake.
  Authenticator authenticate;
  std::chrono::milliseconds auth_failure_delay{2000};  // before each 535
  int max_auth_failures = 3;                           // then 421 and close
  // The STARTTLS handoff (common/starttls.h); tests replace it.
  std::function<Result<TlsInfo>(const TlsRoute& route, int timeout_seconds)> start_tls =
      [](const TlsRoute& route, int timeout_seconds) { return tikimail::start_tls(route, timeout_seconds); };

  // Reads the control files relative to the current directory, POPBEFORESMTP and SUBMISSION.
  // Does not set `authenticate` (main does).
  static Result<SmtpdConfig> load(std::vector<std::string> queue_argv);
};

// What tcpserver and tlsd say about the connection (DESIGN section 3).
struct Client {
  std::string ip = "unknown";        // TCPREMOTEIP
  std::string host;                  // TCPREMOTEHOST, when tcpserver looked it up
  std::string local_port;            // TCPLOCALPORT
  bool relay_client = false;         // RELAYCLIENT set (even empty): may relay
  std::optional<TlsRoute> tls_route; // TLSCTL or TLSD: STARTTLS possible (common/starttls.h)
  std::optional<TlsInfo> tls;        // TLS, TLSCIPHER: TLS is on from the start (465)

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
  void starttls(std::string_view arg);
  void auth(std::string_view arg);
  void not_implemented(std::string_view arg);

  // AUTH offered: TLS is on and there is an authenticator (RFC 4954: never in clear text).
  bool auth_offered() const { return tls_.has_value() && static_cast<bool>(config_.authenticate); }
  // Sends `challenge` and reads one response line, decoded into *out. False when it replied
  // instead (cancel, bad base64, line too long) or the session must end (timeout, EOF).
  bool sasl_step(smtp::Reply challenge, std::string* out);
  // Checks the credentials, answers 235, 535 (after the delay; 421 at the limit) or 454.
  void finish_auth(std::string_view user, std::string_view password, std::string_view mechanism);

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
  std::optional<TlsRoute> tls_route_;     // STARTTLS possible: how it reaches tlsd
  std::optional<TlsInfo> tls_;            // TLS is on
  std::optional<std::string> account_;    // SMTP AUTH succeeded: the account, lowercase
  int auth_failures_ = 0;
  int bad_commands_ = 0;
  bool quit_ = false;
  int exit_code_ = 1;
};

}  // namespace tikimail
