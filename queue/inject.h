// queue/inject.h: what sendmail decides before the message goes to the queue chain: the
// envelope sender and recipients, the header fields it adds, and the exit code (sysexits)
// for the chain's answer. No I/O here; sendmail.cpp does the reading and the running.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/queue_proto.h"
#include "common/status.h"
#include "queue/headers.h"

namespace tikimail {

// The envelope form ("local@domain", local part unquoted) of one address from a list or an
// argument. A bare local name gets "@me". Permanent error when parse_mailbox() refuses it
// (the message says whether it is too long).
Result<std::string> envelope_address(const ListedAddress& address, std::string_view me);

// Each argument is an address list ("a@x", "Joe <joe@x>", "a@x, b@y", "root"); their
// envelope forms in order, duplicates dropped. Permanent error naming the bad argument.
Result<std::vector<std::string>> argument_recipients(const std::vector<std::string>& args,
                                                     std::string_view me);

// The recipients of every To, Cc and Bcc field, in field order, duplicates dropped (against
// `seen` too, which receives them). Permanent error naming the field.
Status header_recipients(const std::vector<HeaderField>& fields, std::string_view me,
                         std::vector<std::string>* seen);

// The envelope sender from -f/-r: "" and "<>" are the null sender (returned as ""), "<a@x>"
// and "a@x" a mailbox, a bare name is qualified with `me`. Permanent error when invalid.
Result<std::string> envelope_sender(std::string_view arg, std::string_view me);

// The default envelope sender: `login@me`; a login that cannot be a local part (empty,
// longer than 64) gives "uid<N>@me" instead.
std::string default_sender(std::string_view login, uid_t uid, std::string_view me);

// The value of a generated From field: "addr" or "Full Name <addr>", the name quoted when it
// holds anything but atext and spaces, control bytes in it turned into spaces (a CR or LF
// from -F must never start a header line of its own).
std::string from_value(std::string_view address, std::string_view full_name);

// What sendmail adds to the header (each value without the field name).
struct HeaderAdditions {
  uid_t uid = 0;           // for "Received: (tikimail sendmail invoked by uid N); <date>"
  std::string date;        // rfc5322_date()
  std::string message_id;  // "<id@me>"
  std::string from;        // from_value()
};

// The header section sendmail hands on: the Received line first, then `fields` in order
// (without Bcc when `drop_bcc`), then Date, Message-ID and From when no field of that name
// (case-insensitive) is among them, then the empty line that ends the section.
std::string compose_header(const std::vector<HeaderField>& fields, bool drop_bcc,
                           const HeaderAdditions& add);

// The sendmail exit code (sysexits.h) for the chain's answer: 0 queued; 65 EX_DATAERR for an
// address too long (11); 69 EX_UNAVAILABLE for a permanent refusal (31, 82 with D); 70
// EX_SOFTWARE for an envelope format error (91: our bug); 75 EX_TEMPFAIL for everything else.
int sendmail_exit_code(const QueueOutcome& outcome);

}  // namespace tikimail
