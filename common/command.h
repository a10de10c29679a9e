// common/command.h: a protocol command line split into verb and argument, and the ASCII
// case-insensitive matching that SMTP and POP3 verbs and keywords use (smtpd, pop3d).
#pragma once

#include <string_view>

namespace tikimail {

struct CommandLine {
  std::string_view verb;  // up to the first space
  std::string_view arg;   // after it, as sent; empty without a space
};
CommandLine split_command(std::string_view line);

// ASCII letters compare without case; every other byte as it is.
bool equal_nocase(std::string_view a, std::string_view b);
bool starts_with_nocase(std::string_view s, std::string_view prefix);

}  // namespace tikimail
