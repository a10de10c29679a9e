// smtpd/sasl.cpp: base64 through libsodium (constant-time, strict), and the PLAIN fields.
#include "smtpd/sasl.h"

#include <sodium.h>

namespace tikimail {

namespace {

constexpr int kBase64 = sodium_base64_VARIANT_ORIGINAL;  // RFC 4954 section 4: RFC 4648 base64

}  // namespace

std::optional<std::string> decode_base64(std::string_view text) {
  if (text == "=") return std::string();  // RFC 4954 section 4: an empty initial response
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &len, &end, kBase64) != 0 ||
      end != text.data() + text.size()) {
    sodium_memzero(out.data(), out.size());
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

std::string encode_base64(std::string_view bytes) {
  std::string out(sodium_base64_encoded_len(bytes.size(), kBase64), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    kBase64);
  out.pop_back();  // the terminating NUL
  return out;
}

std::optional<PlainMessage> parse_plain(std::string_view message) {
  size_t first = message.find('\0');
  if (first == std::string_view::npos) return std::nullopt;
  size_t second = message.find('\0', first + 1);
  if (second == std::string_view::npos || message.find('\0', second + 1) != std::string_view::npos)
    return std::nullopt;
  PlainMessage m;
  m.authzid = message.substr(0, first);
  m.authcid = message.substr(first + 1, second - first - 1);
  m.password = Secret(message.substr(second + 1));
  if (m.authcid.empty() || m.password.empty()) return std::nullopt;
  return m;
}

}  // namespace tikimail
