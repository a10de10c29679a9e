// queue/headers.h: the header section of a message (LF line ends) as sendmail sees it: where
// it ends, its fields, and RFC 5322 section 3.4 address lists for -t (display names,
// comments, quoted strings, groups, obsolete routes).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tikimail {

// Finds the end of the header section while the message arrives. Feed it the whole text
// read so far (the same growing buffer, LF line ends); it only looks at complete lines it
// has not seen. The section is the lines from the start that are fields ("Name:" with a name
// of printable ASCII but ':') or continuation lines (starting with space or tab) after a
// field. It ends at an empty line (which belongs to neither part) or before the first
// other line, which starts the body.
class HeaderEnd {
 public:
  // True once the end is known; then header_bytes() and body_offset() are valid.
  bool scan(std::string_view text);
  // At EOF (every line complete): whatever was not decided is all header.
  void at_eof(std::string_view text);
  size_t header_bytes() const { return header_bytes_; }  // the fields, each ending in LF
  size_t body_offset() const { return body_offset_; }    // after the empty line, if any

 private:
  size_t line_ = 0;
  bool done_ = false;
  size_t header_bytes_ = 0;
  size_t body_offset_ = 0;
};

// True when `line` (without its LF) opens a header field.
bool is_field_line(std::string_view line);

struct HeaderField {
  std::string name;  // as written ("cc" or "Cc")
  std::string text;  // the whole field: name, colon, value, continuation lines, final LF
  // The value after the colon with the folding (LF before space or tab) removed.
  std::string unfolded_value() const;
  // Case-insensitive comparison of the name.
  bool is(std::string_view other) const;
};

// Splits a header section (as delimited by HeaderEnd) into fields, in order.
std::vector<HeaderField> split_fields(std::string_view section);

// One address from an address list: the addr-spec's local part exactly as written (a quoted
// string keeps its quotes and escapes, comments and folding are gone) and its domain, empty
// for a bare local name ("root") that the caller qualifies. Display names and group names
// are dropped.
struct ListedAddress {
  std::string local;
  std::string domain;
  // "local@domain", or "local" without a domain: the text parse_mailbox() checks.
  std::string text() const { return domain.empty() ? local : local + "@" + domain; }
};

// Parses an RFC 5322 address-list (the value of To, Cc, Bcc): mailboxes, name-addr with
// display names, groups ("team: a@x, b@y;" gives a@x and b@y; "undisclosed-recipients:;"
// gives none), comments anywhere CFWS may stand, obsolete routes in angle brackets and empty
// list elements. Also accepts bare local names. A malformed list is a permanent error.
Result<std::vector<ListedAddress>> parse_address_list(std::string_view value);

}  // namespace tikimail
