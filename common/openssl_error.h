// common/openssl_error.h: the text of OpenSSL's first queued error, for log lines and
// replies (tlsd, deliver-remote).
#pragma once

#include <string>
#include <string_view>

namespace tikimail {

// The first error on OpenSSL's error queue as text, or `fallback` when it is empty; the queue
// is cleared.
std::string openssl_reason(std::string_view fallback);

}  // namespace tikimail
