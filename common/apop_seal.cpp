// common/apop_seal.cpp: the server key file and crypto_secretbox sealing of APOP secrets.
#include "common/apop_seal.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common/fd.h"

namespace tikimail {

static_assert(kApopKeyBytes == crypto_secretbox_KEYBYTES);

namespace {

Status sodium_ready() {
  static const int rc = sodium_init();
  if (rc < 0) return Status::temporary("libsodium: sodium_init failed");
  return Status::ok();
}

constexpr int kBase64 = sodium_base64_VARIANT_ORIGINAL;  // A-Z a-z 0-9 + / =: never ':'
constexpr size_t kKeyHex = 2 * kApopKeyBytes;

// Wipes a std::string's bytes before it goes (the key file's text, a decrypted password).
struct Wiped {
  std::string& s;
  ~Wiped() { sodium_memzero(s.data(), s.size()); }
};

}  // namespace

ApopKey::ApopKey(ApopKey&& other) noexcept : bytes_(other.bytes_) { sodium_memzero(other.bytes_.data(), kApopKeyBytes); }

ApopKey& ApopKey::operator=(ApopKey&& other) noexcept {
  if (this != &other) {
    bytes_ = other.bytes_;
    sodium_memzero(other.bytes_.data(), kApopKeyBytes);
  }
  return *this;
}

ApopKey::~ApopKey() { sodium_memzero(bytes_.data(), kApopKeyBytes); }

ApopKey ApopKey::random() {
  ApopKey key;
  (void)sodium_ready();  // randombytes works without init (it falls back to getrandom)
  crypto_secretbox_keygen(key.data());
  return key;
}

Result<ApopKey> load_apop_key(const std::string& path) {
  auto text = read_file(path, 256);
  if (!text) return Status::temporary(text.error().message());
  Wiped wipe{*text};
  std::string_view hex = *text;
  if (hex.ends_with('\n')) hex.remove_suffix(1);
  ApopKey key;
  size_t len = 0;
  const char* end = nullptr;
  if (hex.size() != kKeyHex ||
      sodium_hex2bin(key.data(), kApopKeyBytes, hex.data(), hex.size(), nullptr, &len, &end) != 0 ||
      len != kApopKeyBytes || end != hex.data() + hex.size())
    return Status::temporary(fmt::format("{}: not {} hex digits", path, kKeyHex));
  return key;
}

Result<ApopKey> load_or_create_apop_key(const std::string& path) {
  if (::access(path.c_str(), F_OK) == 0) return load_apop_key(path);
  if (errno != ENOENT) return Status::from_errno("access " + path, errno);

  ApopKey key = ApopKey::random();
  std::string text(kKeyHex + 1, '\0');
  Wiped wipe{text};
  sodium_bin2hex(text.data(), text.size(), key.data(), kApopKeyBytes);
  text.back() = '\n';
  std::string tmp = fmt::format("{}.tmp{}", path, ::getpid());
  auto fd = open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (!fd) return fd.error();
  ::fchmod(fd->get(), 0600);  // whatever the umask
  Status s = write_all(fd->get(), text);
  if (s) s = sync_fd(fd->get(), tmp);  // the key is on disk before its name exists
  if (s) s = fd->close();
  // link(2), not rename(2): a key someone created meanwhile is kept, never replaced (the
  // secrets already sealed under it must stay readable).
  if (s && ::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) s = Status::from_errno("link " + path, errno);
  ::unlink(tmp.c_str());
  if (!s) return s;
  auto slash = path.rfind('/');
  if (Status d = sync_dir(slash == std::string::npos ? "." : path.substr(0, slash)); !d) return d;
  return load_apop_key(path);
}

Result<std::string> seal_apop_secret(const ApopKey& key, std::string_view password) {
  if (Status s = sodium_ready(); !s) return s;
  std::vector<unsigned char> sealed(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + password.size());
  unsigned char* nonce = sealed.data();
  randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(nonce + crypto_secretbox_NONCEBYTES, reinterpret_cast<const unsigned char*>(password.data()),
                        password.size(), nonce, key.data());
  std::string out(sodium_base64_encoded_len(sealed.size(), kBase64), '\0');
  sodium_bin2base64(out.data(), out.size(), sealed.data(), sealed.size(), kBase64);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

Result<Secret> unseal_apop_secret(const ApopKey& key, std::string_view sealed) {
  if (Status s = sodium_ready(); !s) return s;
  if (sealed.empty()) return Status::permanent("APOP secret: empty");
  std::vector<unsigned char> bin(sealed.size());
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(bin.data(), bin.size(), sealed.data(), sealed.size(), nullptr, &len, &end, kBase64) != 0 ||
      end != sealed.data() + sealed.size())
    return Status::permanent("APOP secret: not base64");
  if (len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
    return Status::permanent("APOP secret: too short");
  size_t plain_len = len - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
  if (plain_len > kMaxPassword) return Status::permanent("APOP secret: too long");
  std::string plain(plain_len, '\0');
  Wiped wipe{plain};
  if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()), bin.data() + crypto_secretbox_NONCEBYTES,
                                 len - crypto_secretbox_NONCEBYTES, bin.data(), key.data()) != 0)
    return Status::permanent("APOP secret: does not open under control/apopkey (tampered or another key)");
  return Secret(plain);
}

}  // namespace tikimail
