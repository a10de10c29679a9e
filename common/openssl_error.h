// common/openssl_error.h: OpenSSL's start-up in a process that serves one connection, and
// the text of its first queued error, for log lines and replies (tlsd, deliver-remote).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace tikimail {

// The first error on OpenSSL's error queue as text, or `fallback` when it is empty; the queue
// is cleared.
std::string openssl_reason(std::string_view fallback);

// OpenSSL's start-up as a process that makes one TLS connection and exits wants it; call it
// before anything else of OpenSSL: without the table of legacy cipher and digest names
// (EVP_get_cipherbyname: TLS fetches its algorithms from the providers and never reads it)
// and without the clean-up at exit, which frees one by one what the exit frees at once.
// The two cost about 1.5 ms of CPU per connection here (tlsd/README.md, Notes). openssl.cnf
// and the error strings stay: the administrator's configuration applies, and log lines name
// the reason. A later call does nothing.
Status start_openssl();

}  // namespace tikimail
