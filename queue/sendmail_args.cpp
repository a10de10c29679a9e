// queue/sendmail_args.cpp: the sendmail option parser.
#include "queue/sendmail_args.h"

#include <string_view>

namespace tikimail {

namespace {

// Options that take a value and mean something to us or are accepted and ignored:
// -B body type, -N DSN notify, -R DSN return, -V envelope id, -L log label, -X traffic log,
// -h hop count, -p protocol, -O long option (sendmail 8).
constexpr std::string_view kWithValue = "frFobBNRVLXhpO";
// Flags accepted and ignored: -v verbose, -U initial submission, -m me too, -n no aliasing.
constexpr std::string_view kIgnoredFlags = "vUmn";

}  // namespace

Result<SendmailOptions> parse_sendmail_args(const std::vector<std::string>& args) {
  SendmailOptions opts;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') break;
    for (size_t j = 1; j < arg.size(); ++j) {
      char c = arg[j];
      if (c == 't') {
        opts.recipients_from_headers = true;
      } else if (c == 'i') {
        opts.dot_ends_input = false;
      } else if (kIgnoredFlags.find(c) != std::string_view::npos) {
      } else if (kWithValue.find(c) != std::string_view::npos) {
        std::string value;
        if (j + 1 < arg.size()) value = std::string(arg.substr(j + 1));
        else if (i + 1 < args.size()) value = args[++i];
        else return Status::permanent(fmt::format("option -{} needs a value", c));
        if (c == 'f' || c == 'r') {
          opts.sender = value;
        } else if (c == 'F') {
          opts.full_name = value;
        } else if (c == 'o') {
          // -oi: dots do not end the input; -oem, -odi, -odb, -oee ... are accepted and ignored.
          if (value.empty()) return Status::permanent("option -o needs a value");
          if (value == "i") opts.dot_ends_input = false;
        } else if (c == 'b') {
          if (value == "m") opts.mode = SendmailMode::kSend;
          else if (value == "p") opts.mode = SendmailMode::kListQueue;
          else return Status::permanent(fmt::format("mode -b{} is not supported (only -bm and -bp)", value));
        }
        break;  // the value used the rest of this argument
      } else {
        return Status::permanent(fmt::format("unknown option -{}", c));
      }
    }
  }
  opts.recipients.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  return opts;
}

}  // namespace tikimail
