// common/openssl_error.cpp: OpenSSL's start-up for one connection, and its error queue as text.
#include "common/openssl_error.h"

#include <openssl/crypto.h>
#include <openssl/err.h>

namespace tikimail {

std::string openssl_reason(std::string_view fallback) {
  unsigned long first = ERR_get_error();
  if (first == 0) return std::string(fallback);
  ERR_clear_error();
  char text[256];
  ERR_error_string_n(first, text, sizeof text);
  return text;
}

Status start_openssl() {
  constexpr uint64_t kOptions = OPENSSL_INIT_NO_ADD_ALL_CIPHERS | OPENSSL_INIT_NO_ATEXIT;
  if (OPENSSL_init_crypto(kOptions, nullptr) != 1) return Status::temporary("OpenSSL: " + openssl_reason("cannot start"));
  return Status::ok();
}

}  // namespace tikimail
