// common/openssl_error.cpp: OpenSSL's error queue as text.
#include "common/openssl_error.h"

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

}  // namespace tikimail
