// common/dsn.h: the delivery status notification deliver (and sendmail, for a message it
// cannot queue) sends back when recipients failed for good or have waited long: a multipart/report (RFC 6522) with a text part in
// English and Japanese, a message/delivery-status part (RFC 3464) and the original message
// or its headers. Composing only; queuing the notice is the caller's job.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tikimail {

inline constexpr std::string_view kDsnSubjectFailure = "Undelivered Mail Returned to Sender";
inline constexpr std::string_view kDsnSubjectDelay = "Delayed Mail (still being retried)";

// One recipient the notice reports on.
struct DsnRecipient {
  std::string address;       // final recipient, envelope form: "user@example.net"
  std::string status;        // RFC 3463 "5.1.1" (failure) or "4.4.1" (delay); a malformed
                             // one is reported as 5.0.0 (failure) or 4.0.0 (delay)
  std::string remote_host;   // "mx.example.net[192.0.2.1]:25", or "" when no host answered
  bool from_remote = false;  // `text` is the remote's SMTP reply: "Diagnostic-Code: smtp; text"
  std::string text;          // the remote's reply or our explanation
  time_t last_attempt = 0;   // 0: unknown, no Last-Attempt-Date
};

struct DsnInput {
  enum class Kind { kFailure, kDelay };
  Kind kind = Kind::kFailure;
  std::string reporting_mta;       // control/me: "mail.example.test"
  std::string queue_id;            // 16 hex digits: Message-ID, boundary, X-Tikimail-Queue-ID
  std::string to;                  // who receives the notice; "" gives undisclosed-recipients:;
  std::string original_sender;     // envelope sender of the original; "" for the null sender
  time_t arrival = 0;              // when the original was queued
  time_t retry_until = 0;          // kDelay: Will-Retry-Until (0: not stated)
  std::vector<DsnRecipient> rcpts; // at least one
  size_t max_original = 100000;    // the whole original up to this size, else its headers only
};

// Composes the notice, header and body, in LF form: every line ends in "\n", no CR anywhere
// (remote delivery turns LF into CRLF). Every string of `in` is made safe for where it goes:
// CR, LF and other control bytes never reach a header or start a line, so no field and no
// MIME boundary can be injected.
//
// The original is the first `original_bytes` bytes of `original_fd` (a queue entry file:
// what follows the message there is never read). It is read with pread from offset 0 (the
// fd's offset is not used or moved), at most in.max_original + 1 bytes. An original of at
// most max_original bytes is attached whole as message/rfc822 (Content-Transfer-Encoding
// 8bit when it has 8-bit bytes, else 7bit); a larger one as text/rfc822-headers: its header
// section (up to the first empty line, all of it when there is none), at most max_original
// bytes of it, cut at a line end. CRLF and bare CR in the original become LF.
//
// Errors: temporary when the original cannot be read or the file ends before
// `original_bytes` (the caller retries later rather than sending a notice without it);
// permanent when `in.rcpts` is empty (a caller bug).
Result<std::string> compose_dsn(const DsnInput& in, int original_fd, uint64_t original_bytes, time_t now);

// The parts of compose_dsn, for its tests.

// RFC 2045 6.7 quoted-printable of LF-terminated text: encoded lines of at most 76
// characters (soft breaks "=\n" included), '=' and bytes outside printable ASCII as =XX, no
// space or tab before a line end, a UTF-8 sequence never split by a soft break. A hard line
// end stays "\n"; the result ends in "\n" when `text` does.
std::string quoted_printable(std::string_view text);

// One header field "Name: value\n", folded at spaces (RFC 5322 2.2.3) so that lines stay
// within 78 characters where the words allow; a word too long for a 998-octet line is cut
// with a space put in. CR, LF and control bytes in `value` become spaces, 8-bit bytes '?'.
std::string header_field(std::string_view name, std::string_view value);

// The host name of "mx.example.net[192.0.2.1]:25" for Remote-MTA: "mx.example.net"; the
// address "192.0.2.1" when the name is missing ("[192.0.2.1]:25"); "" for "".
std::string remote_mta_name(std::string_view host);

}  // namespace tikimail
