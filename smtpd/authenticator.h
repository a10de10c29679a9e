// smtpd/authenticator.h: how smtpd checks SMTP AUTH credentials: through the checkpassword
// interface (pop3d/README.md) in its verify-only mode, since smtpd cannot read users/accounts.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace tikimail {

enum class AuthVerdict {
  kOk,         // the password is the account's
  kWrong,      // wrong password, unknown account
  kTemporary,  // the check itself failed (cannot read accounts, timeout, cannot run it)
};

// The credential check a Session calls: user as the client typed it, its password, and the
// mechanism ("PLAIN", "LOGIN") for the log. Tests give a fake; main wires checkpassword.
using Authenticator =
    std::function<AuthVerdict(std::string_view user, std::string_view password, std::string_view mechanism)>;

// Forks `argv` (argv[0] a path, relative to the current directory or absolute) with a pipe on
// fd 3 carrying `user\0password\0\0`, /dev/null on fds 0 and 1, stderr shared (its log line
// lands in ours), and AUTHSERVICE=smtp, AUTHMECH=<mechanism> added to the environment.
// Exit 0: kOk; 1: kWrong; anything else, a signal, or no exit within `timeout_seconds`
// (then the child is killed): kTemporary. The password is wiped from our copy afterwards.
AuthVerdict run_checkpassword_smtp(const std::vector<std::string>& argv, std::string_view user,
                                   std::string_view password, std::string_view mechanism, long timeout_seconds);

}  // namespace tikimail
