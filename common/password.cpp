// common/password.cpp: argon2id through libsodium; wiping cleartext copies.
#include "common/password.h"

#include <sodium.h>

#include <cstring>

namespace tikimail {

namespace {

// sodium_init() is safe to call more than once, but once is enough: a function-local
// static runs it on first use, thread-safely. 0 first time, 1 already done, -1 failure.
Status sodium_ready() {
  static const int rc = sodium_init();
  if (rc < 0) return Status::temporary("libsodium: sodium_init failed");
  return Status::ok();
}

constexpr size_t kSecretCapacity = kMaxPassword + 2;

}  // namespace

Secret::Secret() { text_.reserve(kSecretCapacity); }

Secret::Secret(std::string_view text) : Secret() {
  for (char c : text)
    if (!push_back(c)) break;
}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    wipe();
    text_ = std::move(other.text_);
  }
  return *this;
}

Secret::~Secret() { wipe(); }

bool Secret::push_back(char c) {
  if (text_.size() >= kSecretCapacity) return false;
  text_.push_back(c);  // within the reserved capacity: no reallocation, no stray copy
  return true;
}

void Secret::wipe() {
  text_.resize(text_.capacity());  // within capacity: no reallocation
  sodium_memzero(text_.data(), text_.size());
  text_.clear();
}

Status check_password(std::string_view password) {
  if (password.empty()) return Status::permanent("empty password");
  if (password.size() > kMaxPassword)
    return Status::permanent(fmt::format("password longer than {} bytes", kMaxPassword));
  if (password.find_first_of(std::string_view("\0\r\n", 3)) != std::string_view::npos)
    return Status::permanent("password contains NUL, CR or LF");
  return Status::ok();
}

Result<std::string> hash_password(std::string_view password) {
  if (Status s = check_password(password); !s) return s;
  if (Status s = sodium_ready(); !s) return s;
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                            crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0)
    return Status::temporary("crypto_pwhash_str: out of memory");
  return std::string(out);
}

bool verify_password(std::string_view hash, std::string_view password) {
  if (!check_password(password) || !sodium_ready()) return false;
  if (hash.size() >= crypto_pwhash_STRBYTES || !hash.starts_with("$argon2")) return false;
  char terminated[crypto_pwhash_STRBYTES] = {};  // libsodium wants a NUL-terminated string
  std::memcpy(terminated, hash.data(), hash.size());
  return crypto_pwhash_str_verify(terminated, password.data(), password.size()) == 0;
}

}  // namespace tikimail
