// smtpd/sasl.h: the SASL pieces of SMTP AUTH (RFC 4954): base64 lines and the PLAIN message
// (RFC 4616). LOGIN is two base64 lines, one per field, and needs nothing more.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/password.h"

namespace tikimail {

// The bytes of one base64 line (RFC 4648 alphabet, padding required, no spaces), or nothing
// when it is not base64. "=" is the empty initial response of RFC 4954 section 4.
std::optional<std::string> decode_base64(std::string_view text);
std::string encode_base64(std::string_view bytes);

// RFC 4616: `[authzid] NUL authcid NUL passwd`.
struct PlainMessage {
  std::string authzid;  // "" when the client asked for no other identity
  std::string authcid;  // the account as typed
  Secret password;
};

// Exactly two NULs, and a non-empty authcid and password; else nothing.
std::optional<PlainMessage> parse_plain(std::string_view message);

}  // namespace tikimail
