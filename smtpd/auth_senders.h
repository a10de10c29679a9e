// smtpd/auth_senders.h: which envelope senders an authenticated account may use: its own
// address, the null sender, and the exceptions in control/authsenders (smtpd/README.md).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tikimail {

class AuthSenders {
 public:
  // control/authsenders: one `account:pattern` a line, where pattern is a full address or
  // `@domain` (every address in that domain). A missing file means no exceptions; a line
  // without a ':' or with an empty side is a configuration error naming its line.
  static Result<AuthSenders> load(const std::filesystem::path& path);
  static Result<AuthSenders> from_lines(const std::vector<std::string>& lines);

  // True when `account` may send as `sender` (envelope form, "" for <>). Case-insensitive.
  bool allows(std::string_view account, std::string_view sender) const;

 private:
  struct Rule {
    std::string account;  // lowercase
    std::string pattern;  // lowercase: "a@b" or "@b"
  };
  std::vector<Rule> rules_;
};

}  // namespace tikimail
