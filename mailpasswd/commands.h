// mailpasswd/commands.h: the mailpasswd commands (add, del, passwd, list) against the
// accounts file in the current directory, the installation prefix (mailpasswd/README.md).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/accounts.h"
#include "common/password.h"
#include "common/status.h"

namespace tikimail {

inline constexpr std::string_view kUsage =
    "usage: mailpasswd add ADDRESS [--plan NAME] [--quota BYTES|-] | del ADDRESS | passwd ADDRESS | "
    "apop on|off ADDRESS | list";

// Paths relative to the prefix.
inline constexpr const char* kAccountsPath = "users/accounts";      // mode 0600
inline constexpr const char* kRecipientsPath = "users/recipients";  // mode 0644
inline constexpr const char* kUsersLock = "users/.lock";            // flock(2)ed around every change
inline constexpr const char* kRcpthostsPath = "control/rcpthosts";
// kApopKeyPath (control/apopkey, 0600) and kApopEnabledPath (users/apop-enabled, 0644) are in
// common/apop_seal.h: the key is made on the first `apop on`; the marker exists exactly when
// some account has APOP on (pop3d offers APOP only then).

enum class Verb { kAdd, kDel, kPasswd, kApopOn, kApopOff, kList };

struct Request {
  Verb verb = Verb::kList;
  std::string address;                // lowercased as given; checked when the command runs
  std::string plan{kNoPlan};          // add only: a name from kPlans, or "-"
  std::optional<uint64_t> quota;      // add only: bytes; nullopt for "-" (the plan's default)
};

// Parses the arguments after the program name: a verb ("apop on" and "apop off" are two
// words), the address, and for add the
// options `--plan NAME` and `--quota BYTES` (or `--plan=NAME`, `--quota=BYTES`), anywhere
// after the verb. Anything else, an unknown plan or a malformed quota: a permanent error.
Result<Request> parse_request(const std::vector<std::string>& args);

// Where a new password comes from: read_new_password in the program, a fixed one in tests.
// Called at most once, before the accounts file is locked.
using PasswordSource = std::function<Result<Secret>(std::string_view address)>;

// Carries out the request relative to the current directory and returns what to print on
// standard output. Every change holds an exclusive flock on users/.lock (made 0600) while
// it reads users/accounts, changes it, and replaces users/accounts (0600) and then
// users/recipients (0644), each atomically.
// Every write also makes users/apop-enabled exist exactly when some account has APOP on.
// `apop on` reads the password, which must match the stored hash, and stores it sealed under
// control/apopkey (created when missing); `apop off` erases the sealed copy; `passwd` on an
// account with APOP on seals the new password in place of the old one.
// Permanent errors: a bad address, a domain not in control/rcpthosts, an account that
// exists (add) or does not (del, passwd, apop), a refused password, a password that does not
// match (apop on). Temporary: I/O, a control/apopkey that cannot be read or made.
Result<std::string> run_request(const Request& request, const PasswordSource& password);

// The tool exit code for a failure: 100 permanent, 111 temporary.
int exit_code_for(const Status& status);

}  // namespace tikimail
