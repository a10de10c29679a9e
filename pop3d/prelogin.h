// pop3d/prelogin.h: the AUTHORIZATION state of RFC 1939 (with CAPA, RFC 2449, and STLS, RFC
// 2595): greeting, USER/PASS, APOP, CAPA, STLS, QUIT; the credentials go to the checkpassword
// stage and the TLS handshake to tlsd through injected functions (pop3d/handoff.h and
// common/starttls.h in the program, fakes in tests).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/lineio.h"
#include "common/log.h"
#include "common/starttls.h"
#include "common/status.h"
#include "pop3d/command_reader.h"
#include "pop3d/handoff.h"
#include "pop3d/login_policy.h"

namespace tikimail {

inline constexpr size_t kMaxPop3Command = 255;    // RFC 2449 section 4: octets, CRLF included
inline constexpr int kMaxLoginFailures = 3;       // per connection; then close
inline constexpr int kMaxBadCommands = 10;        // per connection; then close
inline constexpr size_t kMaxUserName = 254;       // kMaxAccountAddress (common/accounts.h)

// What the control files say; loaded once per connection, after enter_home().
struct PreloginConfig {
  std::string me = "localhost";           // control/me (the APOP timestamp's host)
  bool apop = false;                      // users/apop-enabled exists: some account has APOP on
  long timeout = 120;                     // control/timeoutpop3d, seconds without a command (seed S10)
  std::optional<long> login_delay;        // smallest interval of the plain rules of
  std::optional<long> tls_login_delay;    // control/pop3loginpolicy, and of its tls rules (S11)
  std::chrono::milliseconds failure_delay{2000};  // after each failed login

  static Result<PreloginConfig> load();
};

// The smallest non-zero interval among the policy's rules for this kind of session (tls or
// plain), for CAPA's LOGIN-DELAY (RFC 2449 section 6.8); nullopt when no rule limits it.
std::optional<long> min_login_delay(const LoginPolicy& policy, bool tls);

// Hands credentials to the next stage and says what came of it. `password` is the
// password for USER/PASS and the 32 hex digits for APOP; `timestamp` is empty for USER/PASS.
using Authenticate =
    std::function<AuthOutcome(std::string_view user, std::string_view password, std::string_view timestamp)>;

// Asks tlsd for the handshake (common/starttls.h start_tls) once the go-ahead is sent; on
// success fds 0 and 1 carry the TLS connection and TLS is set in the environment.
using StartTls = std::function<Result<TlsInfo>()>;

// The connection's TLS state when pop3d starts (tlsd/README.md).
struct PreloginTls {
  bool on = false;  // implicit TLS (POP3S, port 995) or TLS already on: no STLS
  StartTls start;   // set only in tlsd's on-request mode (a control fd): STLS is offered
};

class Prelogin {
 public:
  // The fds are borrowed. `timestamp` is the greeting's "<pid.time@host>", used only when
  // config.apop is set.
  Prelogin(const PreloginConfig& config, int in_fd, int out_fd, Authenticate authenticate, std::string timestamp,
           std::string client_ip, const Log& log, PreloginTls tls = {});

  // Greets and serves commands until QUIT, a login the session stage took over, too many
  // failures or bad commands, EOF or the idle deadline. Exit code: 0 after QUIT or after the
  // session; 1 client gone, timed out, or closed for too many failures or bad commands.
  int run();

  // The greeting line without CRLF, and the CAPA reply's capability lines (STLS only while
  // it can be used; LOGIN-DELAY for the kind of session this is now, plain or TLS).
  std::string greeting() const;
  std::string capabilities() const;

 private:
  enum class Next { kContinue, kQuit, kClose, kSessionDone };
  using Handler = Next (Prelogin::*)(std::string_view arg);
  struct Command {
    std::string_view verb;
    Handler handler;
  };
  static const Command kCommands[];

  Next user(std::string_view arg);
  Next pass(std::string_view arg);
  Next apop(std::string_view arg);
  Next capa(std::string_view arg);
  Next stls(std::string_view arg);
  Next quit(std::string_view arg);
  Next not_yet(std::string_view arg);

  Next login(std::string_view user, std::string_view password, std::string_view timestamp);
  Next bad(std::string_view reply);
  bool send(std::string_view line);  // one line; CRLF added

  const PreloginConfig& config_;
  Authenticate authenticate_;
  std::string timestamp_;
  std::string client_ip_;
  const Log& log_;
  CommandReader in_;
  LineWriter out_;
  PreloginTls tls_;
  std::optional<std::string> user_;  // after USER, until PASS
  int failures_ = 0;
  int bad_commands_ = 0;
  bool gone_ = false;                // a write failed: the client is gone
};

}  // namespace tikimail
