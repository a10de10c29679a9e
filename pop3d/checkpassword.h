// pop3d/checkpassword.h: the checkpassword stage (pop3d/README.md, "Between pop3d and
// checkpassword"): the credentials on fd 3, their check against users/accounts, POP before
// SMTP, and becoming the mailbox owner in the account's Maildir.
#pragma once

#include <sys/types.h>

#include <filesystem>

#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/accounts.h"
#include "common/log.h"
#include "common/password.h"
#include "common/status.h"

namespace tikimail {

inline constexpr size_t kMaxCredentials = kMaxCheckpasswordInput;  // bytes on fd 3, all three fields
inline constexpr const char* kMailboxUser = "vmail";   // DESIGN section 4

// checkpassword's exit codes before it execs the session (pop3d/README.md).
inline constexpr int kCheckWrong = 1;      // wrong credentials, unknown account, APOP off
inline constexpr int kCheckMisuse = 2;     // malformed fd 3 input, no program to run
inline constexpr int kCheckTemporary = 111;

enum class LoginMethod { kPass, kApop };

// What pop3d wrote on fd 3: `user\0password\0timestamp\0`.
struct Credentials {
  std::string user;          // as the client typed it
  Secret password;           // USER/PASS: the password; APOP: the client's 32 hex digits
  std::string timestamp;     // "" for USER/PASS; the greeting's "<pid.time@host>" for APOP
  LoginMethod method() const { return timestamp.empty() ? LoginMethod::kPass : LoginMethod::kApop; }
};

// Exactly three NUL-terminated fields and nothing after them, at most kMaxCredentials
// bytes; anything else is a permanent error (exit kCheckMisuse).
Result<Credentials> parse_credentials(std::string_view bytes);
// Reads `fd` to its end (at most kMaxCredentials bytes, else permanent) and parses it.
// The bytes read are wiped before returning.
Result<Credentials> read_credentials(int fd);

enum class Verdict { kOk, kWrong, kTemporary };

struct LoginCheck {
  Verdict verdict = Verdict::kWrong;
  std::string address;   // the account (lowercase) when it exists; else ""
  std::string why;       // for the log: never a password, digest or secret
};

// Checks the credentials against `accounts`. The user is lowercased and must name an
// account. USER/PASS: verify_password against its hash. APOP: only when the account has
// apop on; its sealed secret is opened with the key at `apop_key_path` and compared with
// apop_matches. An unknown account costs the same argon2 work as a known one (a dummy
// hash is verified), so the time taken does not tell which addresses exist. kTemporary:
// the key file cannot be read, a secret that does not open, MD5 unavailable.
LoginCheck check_login(const Credentials& credentials, const std::vector<Account>& accounts,
                       const std::string& apop_key_path);

// The verify-only mode for SMTP AUTH: smtpd runs checkpassword with AUTHSERVICE=smtp and
// AUTHMECH=PLAIN|LOGIN. Returns the log's method ("smtp-plain", "smtp-login", "smtp" for
// another or no AUTHMECH) when `authservice` is "smtp"; nothing otherwise (the POP3 stage).
// In that mode checkpassword only checks and exits 0, 1 or 111 (pop3d/README.md).
std::optional<std::string> smtp_auth_method(const char* authservice, const char* authmech);

// The user pop3d runs as in a root install; only it may ask for the full login.
inline constexpr const char* kPop3User = "tiki-pop3";

// Whether a caller with real uid `uid` may use the full login mode (relay entry, becoming
// vmail, exec) when checkpassword runs with effective uid `euid`. Not set-uid (a demo, or
// root itself calling): anyone. Set-uid root: only kPop3User; smtpd, also allowed to run
// checkpassword for SMTP AUTH, gets the verify-only mode and nothing more.
bool caller_may_log_in(uid_t uid, uid_t euid);

// What the control files say about POP before SMTP (seed S4).
struct RelayPolicy {
  uint64_t window = 1200;            // control/relaywindow, seconds
  bool from_pop3s = false;           // control/relayfrompop3s is "1"
  static Result<RelayPolicy> load();
};

// Writes the relay db entry for `ip` (relay/, relayctl/README.md) unless `pop3s` and the
// policy says POP3S logins do not open the relay. A failure is logged and ignored: the
// login goes on. Returns what it did for the log line: "opened", "skipped-pop3s",
// "no-ip", or "failed".
std::string open_relay(const RelayPolicy& policy, std::string_view ip, std::string_view address, bool pop3s,
                       time_t now, const Log& log);

// When the effective uid is 0: switches groups, gid and uid to kMailboxUser's and checks that
// root cannot be regained. Otherwise nothing. Temporary error: no such user, it is root
// itself, or a switch failed.
Status become_mailbox_owner();

// chdir to mail/<domain>/<local>/Maildir (relative to the current directory, the prefix)
// and returns its absolute path. `address` must be an account address (check_account_address).
// Temporary error when it does not exist or cannot be entered.
// Whether pop3d-session will refuse this login at once: another session holds the mailbox
// ([IN-USE]) or the login-interval policy says too soon ([LOGIN-DELAY]). checkpassword asks
// before it opens the relay, since only a successful login opens it (seed S4). It looks
// without changing anything: an absent lock file is no lock, and it creates none (a file
// root made would shut vmail's session out). A race with a session starting meanwhile can
// only cost a relay entry, never a login.
bool session_will_refuse(const std::string& maildir, bool tls, const std::filesystem::path& policy_path);

// "mail/<domain>/<local>/Maildir", relative to the prefix, for a checked account address.
std::string maildir_path(std::string_view address);
// Whether the account's Maildir (its cur/) is there, looked at before the relay opens.
Status maildir_present(std::string_view address);

Result<std::string> enter_maildir(std::string_view address);

}  // namespace tikimail
