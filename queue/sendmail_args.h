// queue/sendmail_args.h: sendmail's command line (queue/README.md, "sendmail": the options
// understood, the ones accepted and ignored, and the usage errors).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace tikimail {

enum class SendmailMode { kSend, kListQueue };  // -bm (default), -bp

struct SendmailOptions {
  SendmailMode mode = SendmailMode::kSend;
  bool recipients_from_headers = false;  // -t
  bool dot_ends_input = true;            // false with -i or -oi
  std::optional<std::string> sender;     // -f or -r as given: "" or "<>" is the null sender
  std::optional<std::string> full_name;  // -F
  std::vector<std::string> recipients;   // the arguments after the options, as given
};

// Parses the arguments after argv[0], getopt style: options may be grouped ("-ti"), an
// option's value may be attached ("-fme@x") or the next argument ("-f me@x"). Options end at
// "--" or at the first argument that does not start with '-'. A permanent error (usage)
// says what is wrong: an unknown option, a missing value, a -b mode other than m and p.
Result<SendmailOptions> parse_sendmail_args(const std::vector<std::string>& args);

}  // namespace tikimail
