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
// before anything else of OpenSSL. It leaves out two things such a process never uses: the
// table of legacy cipher names (EVP_get_cipherbyname), which TLS does not read (it fetches
// its ciphers from the providers) and which only a PEM key encrypted the traditional way
// would need, for its passphrase, which nothing here can give; and the clean-up at exit,
// which frees one by one what the exit frees at once. About 3.5 million instructions of a
// fresh process's start-up (tlsd/README.md, Notes). The digest table stays: certificate
// checks read it for the strength of a CA's signature ("ca md too weak" without it).
// openssl.cnf and the error strings stay too. It does nothing when OpenSSL has already
// started (the unit tests' process), and a later call does nothing.
Status start_openssl();

}  // namespace tikimail
