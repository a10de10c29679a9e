// pop3d/apop.h: the APOP exchange of RFC 1939 section 7: the greeting's timestamp and the
// check of the client's digest, MD5(timestamp + secret) in 32 lowercase hex digits.
#pragma once

#include <sys/types.h>

#include <ctime>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tikimail {

inline constexpr size_t kApopDigestHex = 32;

// The greeting's timestamp "<pid.time@host>" (RFC 1939 section 7: unique per greeting).
std::string apop_timestamp(pid_t pid, time_t now, std::string_view host);

// True for exactly 32 hex digits (either case).
bool valid_apop_digest(std::string_view digest);

// MD5(timestamp + secret) as 32 lowercase hex digits (OpenSSL EVP). Temporary error when
// the digest is not available (an OpenSSL that refuses MD5).
Result<std::string> apop_digest(std::string_view timestamp, std::string_view secret);

// True when `client_digest` (32 hex digits, either case) is MD5(timestamp + secret). The
// final comparison is constant-time (sodium_memcmp). Temporary error as apop_digest.
Result<bool> apop_matches(std::string_view timestamp, std::string_view secret, std::string_view client_digest);

}  // namespace tikimail
