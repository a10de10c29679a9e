// pop3d/apop.cpp: MD5 through OpenSSL's EVP interface; hex without branches on secret bytes.
#include "pop3d/apop.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <memory>

namespace tikimail {

std::string apop_timestamp(pid_t pid, time_t now, std::string_view host) {
  return fmt::format("<{}.{}@{}>", pid, static_cast<long long>(now), host);
}

bool valid_apop_digest(std::string_view digest) {
  if (digest.size() != kApopDigestHex) return false;
  for (char c : digest) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

Result<std::string> apop_digest(std::string_view timestamp, std::string_view secret) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), timestamp.data(), timestamp.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), secret.data(), secret.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), md, &md_len) != 1 || md_len != kApopDigestHex / 2)
    return Status::temporary("OpenSSL: MD5 is not available");
  std::string hex(kApopDigestHex + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), md, md_len);  // constant-time, lowercase
  hex.pop_back();
  return hex;
}

Result<bool> apop_matches(std::string_view timestamp, std::string_view secret, std::string_view client_digest) {
  auto expected = apop_digest(timestamp, secret);
  if (!expected) return expected.error();
  if (!valid_apop_digest(client_digest)) return false;
  std::string client(client_digest);
  for (char& c : client) c = static_cast<char>(c | 0x20);  // hex digits only: 'A'..'F' -> 'a'..'f'
  return sodium_memcmp(expected->data(), client.data(), kApopDigestHex) == 0;
}

}  // namespace tikimail
