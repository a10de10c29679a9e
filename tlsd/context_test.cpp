// tlsd/context_test.cpp: the server context and handshake against a real OpenSSL client.
#include "tlsd/context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "common/test_util.h"
#include "tlsd/test_tls.h"

using namespace tikimail;
using tikimail::testing::TempDir;
using tikimail::testing::TestClient;
using tikimail::testing::TestPair;

namespace {

struct Outcome {
  Result<TlsParams> server = Status::temporary("not run");
  bool client_ok = false;
  std::string served;  // CN of the certificate the client got
};

// One handshake between tlsd's code (in a thread) and a client over a socketpair.
Outcome handshake(const TlsConfig& config, const char* sni = nullptr, int max_version = 0) {
  Outcome out;
  auto ctx = make_server_context(config);
  REQUIRE(ctx.has_value());
  Ssl ssl(SSL_new(ctx->get()));
  TestPair pair;
  std::thread server([&] {
    out.server = accept_tls(ssl.get(), pair.server.get(), pair.server.get(), Deadline::after_seconds(5));
  });
  TestClient client(pair.client.get(), sni, max_version);
  out.client_ok = client.connect();
  out.served = client.peer_name();
  ::shutdown(pair.client.get(), SHUT_WR);  // a client that gave up lets the server see EOF
  server.join();
  return out;
}

TlsConfig config_in(const TempDir& dir) {
  TlsConfig config;
  config.tls_dir = (dir.path() / "control/tls").string();
  return config;
}

// The certificate in <dir>/cert.pem, for read_key_of_cert_type.
std::unique_ptr<X509, decltype(&X509_free)> cert_in(const std::filesystem::path& dir) {
  std::unique_ptr<BIO, decltype(&BIO_free)> file(BIO_new_file((dir / "cert.pem").c_str(), "r"), BIO_free);
  return {file ? PEM_read_bio_X509(file.get(), nullptr, nullptr, nullptr) : nullptr, X509_free};
}

}  // namespace

TEST_CASE("tlsd context: an SNI name becomes a folder name only when it is a host name") {
  CHECK(sni_directory_name("Mail.Example.TEST") == "mail.example.test");
  CHECK(sni_directory_name("a-b_c.x9") == "a-b_c.x9");
  CHECK_FALSE(sni_directory_name(""));
  CHECK_FALSE(sni_directory_name(".."));
  CHECK_FALSE(sni_directory_name("../key"));
  CHECK_FALSE(sni_directory_name("a/b"));
  CHECK_FALSE(sni_directory_name("a..b"));
  CHECK_FALSE(sni_directory_name("trailing."));
  CHECK_FALSE(sni_directory_name("sp ace"));
  CHECK_FALSE(sni_directory_name(std::string("nul\0x", 5)));
  CHECK_FALSE(sni_directory_name(std::string(64, 'a') + ".test"));
  CHECK_FALSE(sni_directory_name(std::string(250, 'a') + ".test"));
}

TEST_CASE("tlsd context: a handshake serves control/tls/cert.pem with TLS 1.3") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "mx.test"));
  TlsConfig config = config_in(dir);
  Outcome out = handshake(config, "mx.test");
  REQUIRE(out.server.has_value());
  CHECK(out.client_ok);
  CHECK(out.served == "mx.test");
  CHECK(out.server->version == "TLSv1.3");
  CHECK(out.server->cipher.rfind("TLS_", 0) == 0);
  CHECK(out.server->sni == "mx.test");
}

TEST_CASE("tlsd context: TLS 1.2 uses the control/tlsciphers list") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "mx.test"));
  TlsConfig config = config_in(dir);
  config.ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305";
  Outcome out = handshake(config, nullptr, TLS1_2_VERSION);
  REQUIRE(out.server.has_value());
  CHECK(out.server->version == "TLSv1.2");
  CHECK(out.server->cipher == "ECDHE-ECDSA-CHACHA20-POLY1305");
  CHECK(out.server->sni.empty());
}

TEST_CASE("tlsd context: SNI picks the certificate of control/tls/sni/<name>") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "default.test"));
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls/sni/customer.test", "customer.test"));
  TlsConfig config = config_in(dir);
  CHECK(handshake(config, "Customer.TEST").served == "customer.test");
  CHECK(handshake(config, "other.test").served == "default.test");
  CHECK(handshake(config).served == "default.test");
  CHECK(handshake(config, "../../control/tls/sni/customer.test").served == "default.test");
}

TEST_CASE("tlsd context: an SNI folder whose files do not load fails the handshake") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "default.test"));
  dir.write("control/tls/sni/broken.test/cert.pem", "not a certificate\n");
  Outcome out = handshake(config_in(dir), "broken.test");
  CHECK_FALSE(out.client_ok);
  CHECK_FALSE(out.server.has_value());
}

TEST_CASE("tlsd context: RSA and EC keys load in PKCS#8 and in the traditional form, default and SNI") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "default.test", "rsa"));
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls/sni/ec.test", "ec.test"));
  TlsConfig config = config_in(dir);
  CHECK(handshake(config).served == "default.test");
  CHECK(handshake(config, "ec.test").served == "ec.test");
  REQUIRE(testing::make_key_traditional(dir.path() / "control/tls"));
  REQUIRE(testing::make_key_traditional(dir.path() / "control/tls/sni/ec.test"));
  CHECK_THAT(dir.read("control/tls/key.pem"), Catch::StartsWith("-----BEGIN RSA PRIVATE KEY-----"));
  CHECK_THAT(dir.read("control/tls/sni/ec.test/key.pem"), Catch::StartsWith("-----BEGIN EC PRIVATE KEY-----"));
  Outcome out = handshake(config);
  CHECK(out.client_ok);
  CHECK(out.served == "default.test");
  CHECK(handshake(config, "ec.test").served == "ec.test");
}

TEST_CASE("tlsd context: the key is decoded as its certificate's type, in PKCS#8 and in the traditional form") {
  TempDir dir;
  for (const char* kind : {"rsa", "ec"}) {
    INFO(kind);
    auto pair = dir.path() / kind;
    REQUIRE(testing::make_test_cert(pair, "mx.test", kind));
    auto cert = cert_in(pair);
    REQUIRE(cert);
    EvpPkey pkcs8 = read_key_of_cert_type((pair / "key.pem").string(), cert.get());
    REQUIRE(pkcs8);
    CHECK(EVP_PKEY_eq(pkcs8.get(), X509_get0_pubkey(cert.get())) == 1);
    REQUIRE(testing::make_key_traditional(pair));
    EvpPkey traditional = read_key_of_cert_type((pair / "key.pem").string(), cert.get());
    REQUIRE(traditional);
    CHECK(EVP_PKEY_eq(traditional.get(), X509_get0_pubkey(cert.get())) == 1);
  }
  // Another type than the certificate's, no file, no certificate: null, and nothing queued.
  auto ec_cert = cert_in(dir.path() / "ec");
  CHECK_FALSE(read_key_of_cert_type((dir.path() / "rsa/key.pem").string(), ec_cert.get()));
  CHECK_FALSE(read_key_of_cert_type((dir.path() / "none/key.pem").string(), ec_cert.get()));
  CHECK_FALSE(read_key_of_cert_type((dir.path() / "ec/key.pem").string(), nullptr));
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("tlsd context: a key of another type or pair than the certificate is refused, naming the key") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "mx.test"));
  REQUIRE(testing::make_test_cert(dir.path() / "other-rsa", "x.test", "rsa"));
  REQUIRE(testing::make_test_cert(dir.path() / "other-ec", "y.test"));
  for (const char* other : {"other-rsa", "other-ec"}) {
    INFO(other);
    dir.write("control/tls/key.pem", dir.read(std::string(other) + "/key.pem"));
    auto ctx = make_server_context(config_in(dir));
    REQUIRE_FALSE(ctx.has_value());
    CHECK(ctx.error().temporary_failure());
    CHECK_THAT(ctx.error().message(), Catch::Contains("control/tls/key.pem: "));
  }
  dir.write("control/tls/key.pem", "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n");
  auto ctx = make_server_context(config_in(dir));
  REQUIRE_FALSE(ctx.has_value());
  CHECK_THAT(ctx.error().message(), Catch::Contains("control/tls/key.pem: "));
}

TEST_CASE("tlsd context: an encrypted key is refused at once, and no passphrase is read from fd 0") {
  TempDir dir;
  auto tls = dir.path() / "control/tls";
  std::filesystem::create_directories(tls);
  std::string command = "openssl req -x509 -newkey rsa:2048 -passout pass:secret -days 2 -subj /CN=mx.test -keyout '" +
                        (tls / "key.pem").string() + "' -out '" + (tls / "cert.pem").string() + "' >/dev/null 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);
  REQUIRE_THAT(dir.read("control/tls/key.pem"), Catch::StartsWith("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
  // OpenSSL's prompt reads the terminal, or fd 0 when there is none; in tlsd fd 0 is the
  // client. Offer the right passphrase there: it must not be taken.
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  REQUIRE(::write(pipe_fds[1], "secret\n", 7) == 7);
  ::close(pipe_fds[1]);
  int saved = ::dup(0);
  ::dup2(pipe_fds[0], 0);
  ::close(pipe_fds[0]);
  auto ctx = make_server_context(config_in(dir));
  ::dup2(saved, 0);
  ::close(saved);
  REQUIRE_FALSE(ctx.has_value());
  CHECK_THAT(ctx.error().message(), Catch::Contains("control/tls/key.pem: "));
}

TEST_CASE("tlsd context: a certificate replaced on disk is served to the next connection") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "old.test"));
  TlsConfig config = config_in(dir);
  CHECK(handshake(config).served == "old.test");
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "new.test"));
  CHECK(handshake(config).served == "new.test");
}

TEST_CASE("tlsd context: TLS 1.1 is refused") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "mx.test"));
  Outcome out = handshake(config_in(dir), nullptr, TLS1_1_VERSION);
  CHECK_FALSE(out.client_ok);
  REQUIRE_FALSE(out.server.has_value());
  CHECK_THAT(out.server.error().message(), Catch::Contains("unsupported protocol"));
}

TEST_CASE("tlsd context: a silent client fails the handshake at the deadline") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "mx.test"));
  TlsConfig config = config_in(dir);
  auto ctx = make_server_context(config);
  REQUIRE(ctx.has_value());
  Ssl ssl(SSL_new(ctx->get()));
  TestPair pair;
  auto params = accept_tls(ssl.get(), pair.server.get(), pair.server.get(), Deadline::after(std::chrono::milliseconds(200)));
  REQUIRE_FALSE(params.has_value());
  CHECK(params.error().message() == "timeout");
}

TEST_CASE("tlsd context: a missing key is an error naming the file") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "mx.test"));
  std::filesystem::remove(dir.path() / "control/tls/key.pem");
  auto ctx = make_server_context(config_in(dir));
  REQUIRE_FALSE(ctx.has_value());
  CHECK(ctx.error().temporary_failure());
  CHECK_THAT(ctx.error().message(), Catch::Contains("key.pem"));
}

TEST_CASE("tlsd context: check_key_files only opens the pair: a missing one or a folder is named, content is not read") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "mx.test"));
  std::string tls_dir = config_in(dir).tls_dir;
  CHECK(check_key_files(tls_dir).is_ok());
  dir.write("control/tls/cert.pem", "not a certificate\n");
  CHECK(check_key_files(tls_dir).is_ok());  // found out when the context is built
  std::filesystem::remove(dir.path() / "control/tls/key.pem");
  Status missing = check_key_files(tls_dir);
  REQUIRE_FALSE(missing.is_ok());
  CHECK(missing.temporary_failure());
  CHECK_THAT(missing.message(), Catch::Contains("key.pem: No such file or directory"));
  std::filesystem::create_directory(dir.path() / "control/tls/key.pem");
  CHECK_THAT(check_key_files(tls_dir).message(), Catch::Contains("key.pem: not a regular file"));
}

TEST_CASE("tlsd context: a cipher list OpenSSL cannot use is an error") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "mx.test"));
  TlsConfig config = config_in(dir);
  config.ciphers = "NO-SUCH-CIPHER";
  auto ctx = make_server_context(config);
  REQUIRE_FALSE(ctx.has_value());
  CHECK_THAT(ctx.error().message(), Catch::Contains("control/tlsciphers"));
}
