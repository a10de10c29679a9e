// pop3d/login_policy.h: the login-interval policy of seed S11 (control/pop3loginpolicy) and
// the record of the last successful login it is measured from (Maildir/.tikimail-lastlogin).
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace tikimail {

// One line of control/pop3loginpolicy: `<plain|tls> <min mailbox size> <min interval seconds>`.
struct LoginRule {
  bool tls = false;        // applies to sessions over TLS (POP3S or STLS), else to plain ones
  uint64_t min_bytes = 0;  // applies to mailboxes of at least this many bytes
  uint64_t interval = 0;   // seconds that must pass between two logins; 0: no limit

  bool operator==(const LoginRule&) const = default;
};

class LoginPolicy {
 public:
  // Parses the meaningful lines of the file (read_control_lines: comments and blank lines
  // already gone). Fields are separated by spaces or tabs; the size is decimal bytes, or
  // with a suffix K, M or G (1024, 1024^2, 1024^3; either case). No lines: no enforcement.
  // A malformed line is a temporary error "pop3loginpolicy line N: why" (an administrator
  // fixes it; until then logins answer [SYS/TEMP]).
  static Result<LoginPolicy> parse(const std::vector<std::string>& lines);
  // read_control_lines(path) then parse; a missing file is the empty policy.
  static Result<LoginPolicy> load(const std::filesystem::path& path);

  // The minimum interval for a session of this kind on a mailbox of `mailbox_bytes`: the
  // rule of that kind with the largest min_bytes not above the size; 0 when none applies.
  uint64_t interval(bool tls, uint64_t mailbox_bytes) const;
  const std::vector<LoginRule>& rules() const { return rules_; }

 private:
  std::vector<LoginRule> rules_;
};

// A last login up to this many seconds in the future counts as "just now"; further ahead it
// is a clock step and is ignored.
inline constexpr time_t kLoginClockSlack = 60;

// The seconds a client must still wait before logging in again: 0 when there is no record
// of a last login, when `interval` has passed since it, or when the record lies more than
// kLoginClockSlack in the future (a clock step must not lock anyone out); else the rest of
// the interval, at least 1.
uint64_t login_wait(uint64_t interval, std::optional<time_t> last_login, time_t now);

// The mtime of <maildir>/.tikimail-lastlogin, or nullopt when it does not exist.
Result<std::optional<time_t>> read_last_login(const std::string& maildir);
// Sets that mtime to now, creating the file (mode 0600) when missing.
Status touch_last_login(const std::string& maildir);

}  // namespace tikimail
