// tlsd/test_tls.h: unit tests only: throwaway certificates made by `openssl req`, and a
// blocking OpenSSL client on one end of a socketpair.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/fd.h"

namespace tikimail::testing {

// Writes a self-signed certificate for `name` and its key as <dir>/cert.pem and <dir>/key.pem:
// P-256 by default, `key` "rsa" for RSA 2048 (the key in PKCS#8, "BEGIN PRIVATE KEY"). True
// when openssl succeeded.
inline bool make_test_cert(const std::filesystem::path& dir, const std::string& name, const std::string& key = "ec") {
  std::filesystem::create_directories(dir);
  std::string kind = key == "rsa" ? "-newkey rsa:2048" : "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1";
  std::string command = "openssl req -x509 " + kind + " -nodes -days 2 -keyout '" + (dir / "key.pem").string() +
                        "' -out '" + (dir / "cert.pem").string() + "' -subj /CN=" + name + " >/dev/null 2>&1";
  return std::system(command.c_str()) == 0;
}

// Rewrites <dir>/key.pem in its type's own traditional form ("BEGIN RSA PRIVATE KEY",
// "BEGIN EC PRIVATE KEY"), as older tools write keys. True when openssl succeeded.
inline bool make_key_traditional(const std::filesystem::path& dir) {
  std::string key = (dir / "key.pem").string();
  std::string command = "openssl pkey -traditional -in '" + key + "' -out '" + key + ".new' >/dev/null 2>&1 && mv '" +
                        key + ".new' '" + key + "'";
  return std::system(command.c_str()) == 0;
}

// A connected AF_UNIX stream pair: one end for the server, one for the client. Like tlsd's
// main, the test process ignores SIGPIPE: a peer that closed is an error return, not a death.
struct TestPair {
  Fd server;
  Fd client;
  TestPair() {
    ::signal(SIGPIPE, SIG_IGN);
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0) {
      server = Fd(fds[0]);
      client = Fd(fds[1]);
    }
  }
};

// A blocking TLS client on `fd`. No verification: the tests look at the certificate served.
class TestClient {
 public:
  explicit TestClient(int fd, const char* sni = nullptr, int max_version = 0) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (max_version != 0) {
      SSL_CTX_set_min_proto_version(ctx_, 0);
      SSL_CTX_set_max_proto_version(ctx_, max_version);
      SSL_CTX_set_cipher_list(ctx_, "DEFAULT:@SECLEVEL=0");  // let the client offer old versions
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd);
    if (sni != nullptr) SSL_set_tlsext_host_name(ssl_, sni);
  }
  ~TestClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  bool connect() { return SSL_connect(ssl_) == 1; }
  SSL* ssl() { return ssl_; }
  // The CN of the certificate the server sent.
  std::string peer_name() {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (cert == nullptr) return "";
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    X509_free(cert);
    return cn;
  }
  bool write(const std::string& text) {
    return SSL_write(ssl_, text.data(), static_cast<int>(text.size())) == static_cast<int>(text.size());
  }
  // Reads until `n` bytes or the end; the end's SSL_get_error code goes to *end_code.
  std::string read(size_t n, int* end_code = nullptr) {
    std::string out;
    char buf[16384];
    while (out.size() < n) {
      int r = SSL_read(ssl_, buf, static_cast<int>(std::min(sizeof buf, n - out.size())));
      if (r <= 0) {
        if (end_code != nullptr) *end_code = SSL_get_error(ssl_, r);
        break;
      }
      out.append(buf, static_cast<size_t>(r));
    }
    return out;
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

}  // namespace tikimail::testing
