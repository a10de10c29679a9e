// common/apop_seal.h: the APOP secret at rest (seed S3): the server key control/apopkey and
// the sealed copy of an account's password in the accounts file's apopsecret field.
//
// APOP needs the cleartext password on the server (RFC 1939 section 7: the digest is
// MD5(timestamp + secret)), so an account with APOP on stores it a second time, sealed with
// libsodium's crypto_secretbox (XSalsa20-Poly1305) under a 32-byte server key. The key lives
// in control/apopkey, mode 0600: in a root install only root (mailpasswd, checkpassword) can
// read it. mailpasswd seals; checkpassword unseals.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "common/password.h"
#include "common/status.h"

namespace tikimail {

// Paths relative to the prefix.
inline constexpr const char* kApopKeyPath = "control/apopkey";       // 64 hex digits and LF, 0600
inline constexpr const char* kApopEnabledPath = "users/apop-enabled";  // empty, 0644: some account has APOP on

inline constexpr size_t kApopKeyBytes = 32;  // crypto_secretbox_KEYBYTES (checked in the .cpp)

// The server key. Its bytes are wiped on destruction; never logged.
class ApopKey {
 public:
  ApopKey() { bytes_.fill(0); }
  ApopKey(const ApopKey&) = delete;
  ApopKey& operator=(const ApopKey&) = delete;
  ApopKey(ApopKey&& other) noexcept;
  ApopKey& operator=(ApopKey&& other) noexcept;
  ~ApopKey();

  // A fresh random key.
  static ApopKey random();
  const unsigned char* data() const { return bytes_.data(); }
  unsigned char* data() { return bytes_.data(); }

 private:
  std::array<unsigned char, kApopKeyBytes> bytes_;
};

// Reads the key file: one line of 64 hex digits (a final LF allowed). A missing, unreadable
// or malformed file is a temporary error (the administrator fixes it; logins retry).
Result<ApopKey> load_apop_key(const std::string& path);

// The key at `path`, created first when missing: random bytes written to a temporary file
// (mode 0600) beside it, fsynced, then linked into place, so that a crash or a concurrent
// creator never leaves a half-written key, and two creators end up with the same one.
// Errors are temporary.
Result<ApopKey> load_or_create_apop_key(const std::string& path);

// The apopsecret field for `password`: base64 (original alphabet, with padding: no ':')
// of a fresh 24-byte nonce followed by crypto_secretbox_easy(password). Temporary error
// only when libsodium cannot start.
Result<std::string> seal_apop_secret(const ApopKey& key, std::string_view password);

// The password sealed in `sealed`. Permanent error when the text is not base64, too short,
// or fails authentication (tampered, or sealed under another key); temporary when
// libsodium cannot start.
Result<Secret> unseal_apop_secret(const ApopKey& key, std::string_view sealed);

}  // namespace tikimail
