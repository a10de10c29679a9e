// common/remote_result.h: what deliver-remote tells deliver about each recipient it was given
// (deliver-remote/README.md "Output"). One line per recipient, in argument order:
//
//   <kind> <status> <host> <source> <text>\n
//
//   kind    K delivered (the remote accepted the message), Z temporary failure, D permanent
//   status  the enhanced status code, digits "c.s.d" (RFC 3463): from the remote's reply when
//           it carried one, else derived from the reply code or our own trouble
//   host    where the answer came from, "mx.example.net[192.0.2.1]:25", or "-" when no host
//           answered (DNS trouble, every connection refused ...)
//   source  "r" when text is the remote's SMTP reply (a bounce shows it as Diagnostic-Code:
//           smtp; text), "l" when it is our own explanation
//   text    printable ASCII only (other bytes become '?'), at most kMaxResultText bytes; a
//           multiline reply is joined with " / "
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tikimail {

inline constexpr size_t kMaxResultText = 1000;
// Recipients of one deliver-remote run: RFC 5321 4.5.3.1.8 asks servers to take at least 100
// per transaction, so a run never gives more.
inline constexpr size_t kMaxRemoteRcpts = 100;

struct RemoteResult {
  enum class Kind : char { kDelivered = 'K', kTemporary = 'Z', kPermanent = 'D' };
  Kind kind = Kind::kTemporary;
  std::string status = "4.0.0";
  std::string host;          // "" when no host answered
  bool from_remote = false;  // text is the remote's reply
  std::string text;
};

// One line, with its newline; the text is made printable and cut to kMaxResultText, a status
// that is not "c.s.d" becomes the class default (2.0.0, 4.0.0, 5.0.0), a host with spaces or
// control bytes becomes "-".
std::string encode_result(const RemoteResult& result);

// Exactly `count` lines of that form; anything else (fewer, more, a malformed line) is an
// error, and deliver then treats every recipient of the call as a temporary failure.
Result<std::vector<RemoteResult>> decode_results(std::string_view output, size_t count);

// True for "c.s.d" with c in 2,4,5, s 1-3 digits, d 1-3 digits (RFC 3463).
bool valid_status_code(std::string_view status);

// A result whose text is our own explanation (source l), made printable.
RemoteResult own_result(RemoteResult::Kind kind, std::string status, std::string_view text);

// Printable ASCII of `text` (other bytes '?', CR/LF/TAB as a space), at most `max` bytes.
std::string printable(std::string_view text, size_t max = kMaxResultText);

}  // namespace tikimail
