// common/password.h: password hashing (libsodium argon2id, crypto_pwhash_str) and the one
// buffer type that holds a cleartext password in memory.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace tikimail {

// The longest password accepted, in bytes. Longer input is refused, not cut.
inline constexpr size_t kMaxPassword = 1024;
// The checkpassword interface (pop3d/README.md) takes at most this many bytes on fd 3:
// `user\0password\0timestamp\0`. Callers refuse longer credentials themselves.
inline constexpr size_t kMaxCheckpasswordInput = 512;

// A cleartext password. Its bytes live in one heap buffer reserved up front, so they are
// never copied by growth, and the whole buffer is wiped with sodium_memzero on
// destruction. Moving hands the buffer over. Never log or print one.
class Secret {
 public:
  Secret();
  explicit Secret(std::string_view text);  // for tests and callers that already hold it
  Secret(Secret&&) noexcept = default;
  Secret& operator=(Secret&&) noexcept;
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  ~Secret();

  std::string_view view() const { return text_; }
  size_t size() const { return text_.size(); }
  bool empty() const { return text_.empty(); }
  // Appends a byte; false (and nothing appended) once kMaxPassword + 2 bytes are held,
  // room enough to tell "too long" and to hold a CRLF before it is stripped.
  bool push_back(char c);
  void pop_back() { text_.pop_back(); }

 private:
  void wipe();
  std::string text_;
};

// Ok for a password we store: 1 to kMaxPassword bytes, no NUL, CR or LF (they cannot
// travel in a POP3 PASS line). Else a permanent error saying why (without the password).
Status check_password(std::string_view password);

// The crypto_pwhash_str form of `password`: "$argon2id$v=19$m=65536,t=2,p=1$salt$hash"
// (OPSLIMIT_INTERACTIVE, MEMLIMIT_INTERACTIVE, a fresh random salt each call).
// Permanent error when check_password refuses it; temporary when libsodium cannot
// start or the memory for the hash is not there.
Result<std::string> hash_password(std::string_view password);

// True only when `hash` is an argon2 crypto_pwhash_str string and `password` matches it.
// "!" (no password), a malformed hash, or a password check_password refuses: false.
bool verify_password(std::string_view hash, std::string_view password);

}  // namespace tikimail
