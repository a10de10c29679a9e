// deliver-remote/tls_client_test.cpp: STARTTLS against a real OpenSSL server in a thread, with a
// self-signed certificate made for the test: the tlsremote levels may, encrypt and verify.
#include "deliver-remote/tls_client.h"

#include <catch2/catch.hpp>

#include "deliver-remote/smtp_client.h"
#include "deliver-remote/test_server.h"
#include "tlsd/context.h"
#include "tlsd/test_tls.h"

using namespace tikimail;
using namespace tikimail::testing;
using Kind = RemoteResult::Kind;

namespace {

std::string tls_reply(std::string_view c) {
  if (c.substr(0, 4) == "EHLO") return "250-fake.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
  if (c == "STARTTLS") return "220 2.0.0 go ahead\r\n";
  return standard_reply(c);
}

// Runs one session with the given level and client context against `server`, as `target`.
HostOutcome tls_session(FakeSmtp& server, TlsLevel level, SSL_CTX* client_ctx, const Target& target) {
  TempDir dir;
  TestMessage message(dir, "Subject: tls\n\nhello\n");
  SmtpPair pair;
  std::thread thread([&] { server.serve(pair.server.get()); });
  Connection conn(std::move(pair.client));
  SessionConfig config;
  config.helo = "here.test";
  config.tls = level;
  config.tls_ctx = client_ctx;
  config.timeouts.replace(5);
  Log log("deliver-remote-test");
  HostOutcome out = run_smtp(conn, target, SmtpEnvelope{"<>", {"<a@fake.test>"}},
                             message.source(), config, log);
  conn = Connection(Fd());
  thread.join();
  return out;
}

struct Certs {
  TempDir dir;
  TlsConfig config;
  SslCtx server;
  Certs() {
    REQUIRE(make_test_cert(dir.path(), "mx.fake.test"));
    config.tls_dir = dir.path().string();
    auto ctx = make_server_context(config);
    REQUIRE(ctx);
    server = std::move(*ctx);
  }
  std::string ca() const { return (dir.path() / "cert.pem").string(); }
};

}  // namespace

TEST_CASE("deliver-remote: may: STARTTLS when offered, then EHLO again", "[deliver-remote]") {
  Certs certs;
  auto client = make_client_context(false, "");
  REQUIRE(client);
  FakeSmtp server;
  server.respond = tls_reply;
  server.tls_ctx = certs.server.get();
  HostOutcome out = tls_session(server, TlsLevel::kMay, client->get(), fake_target());
  REQUIRE(out.next == HostOutcome::Next::kFinal);
  CHECK(out.results[0].kind == Kind::kDelivered);
  CHECK(server.tls_done);
  REQUIRE(server.commands.size() >= 4);
  CHECK(server.commands[0] == "EHLO here.test");
  CHECK(server.commands[1] == "STARTTLS");
  CHECK(server.commands[2] == "EHLO here.test");
  CHECK(server.commands[3] == "MAIL FROM:<>");  // no second STARTTLS
}

TEST_CASE("deliver-remote: may: a failed handshake asks for a plaintext retry", "[deliver-remote]") {
  auto client = make_client_context(false, "");
  REQUIRE(client);
  FakeSmtp server;
  server.respond = tls_reply;
  server.close_after_starttls = true;
  HostOutcome out = tls_session(server, TlsLevel::kMay, client->get(), fake_target());
  CHECK(out.next == HostOutcome::Next::kRetryWithoutTls);
  CHECK(out.failure.status == "4.7.5");

  // The retry: allow_tls false, so STARTTLS is not even tried.
  FakeSmtp plain;
  plain.respond = tls_reply;
  TempDir dir;
  TestMessage message(dir, "x\n");
  SmtpPair pair;
  std::thread thread([&] { plain.serve(pair.server.get()); });
  Connection conn(std::move(pair.client));
  SessionConfig config;
  config.helo = "here.test";
  config.tls_ctx = client->get();
  config.timeouts.replace(5);
  Log log("deliver-remote-test");
  HostOutcome again = run_smtp(conn, fake_target(), SmtpEnvelope{"<>", {"<a@fake.test>"}},
                               message.source(), config, log, false);
  conn = Connection(Fd());
  thread.join();
  CHECK(again.next == HostOutcome::Next::kFinal);
  CHECK(std::find(plain.commands.begin(), plain.commands.end(), "STARTTLS") == plain.commands.end());
}

TEST_CASE("deliver-remote: may: a STARTTLS refusal continues in plaintext", "[deliver-remote]") {
  auto client = make_client_context(false, "");
  REQUIRE(client);
  FakeSmtp server;
  server.respond = [](std::string_view c) -> std::string {
    return c == "STARTTLS" ? "454 4.7.0 TLS not available\r\n" : tls_reply(c);
  };
  HostOutcome out = tls_session(server, TlsLevel::kMay, client->get(), fake_target());
  REQUIRE(out.next == HostOutcome::Next::kFinal);
  CHECK(out.results[0].kind == Kind::kDelivered);
}

TEST_CASE("deliver-remote: encrypt: no STARTTLS offered is a failure for that host", "[deliver-remote]") {
  auto client = make_client_context(false, "");
  REQUIRE(client);
  FakeSmtp server;  // standard_reply offers no STARTTLS
  HostOutcome out = tls_session(server, TlsLevel::kEncrypt, client->get(), fake_target());
  CHECK(out.next == HostOutcome::Next::kNextAddress);
  CHECK(out.failure.kind == Kind::kTemporary);
  CHECK(out.failure.status == "4.7.5");
  CHECK(out.failure.text.find("does not offer STARTTLS") != std::string::npos);
  CHECK(std::find(server.commands.begin(), server.commands.end(), "MAIL FROM:<>") == server.commands.end());
}

TEST_CASE("deliver-remote: encrypt: an unverified certificate is fine", "[deliver-remote]") {
  Certs certs;
  auto client = make_client_context(false, "");
  REQUIRE(client);
  FakeSmtp server;
  server.respond = tls_reply;
  server.tls_ctx = certs.server.get();
  HostOutcome out = tls_session(server, TlsLevel::kEncrypt, client->get(), fake_target("whatever.test"));
  REQUIRE(out.next == HostOutcome::Next::kFinal);
  CHECK(out.results[0].kind == Kind::kDelivered);
}

TEST_CASE("deliver-remote: verify: the chain and the host name are checked", "[deliver-remote]") {
  Certs certs;
  SECTION("trusted, right name") {
    auto client = make_client_context(true, certs.ca());
    REQUIRE(client);
    FakeSmtp server;
    server.respond = tls_reply;
    server.tls_ctx = certs.server.get();
    HostOutcome out = tls_session(server, TlsLevel::kVerify, client->get(), fake_target("mx.fake.test"));
    REQUIRE(out.next == HostOutcome::Next::kFinal);
    CHECK(out.results[0].kind == Kind::kDelivered);
  }
  SECTION("trusted, wrong name") {
    auto client = make_client_context(true, certs.ca());
    REQUIRE(client);
    FakeSmtp server;
    server.respond = tls_reply;
    server.tls_ctx = certs.server.get();
    HostOutcome out = tls_session(server, TlsLevel::kVerify, client->get(), fake_target("mx.other.test"));
    CHECK(out.next == HostOutcome::Next::kNextAddress);
    CHECK(out.failure.status == "4.7.5");
    CHECK(out.failure.text.find("certificate verify failed: hostname mismatch") != std::string::npos);
  }
  SECTION("right name, untrusted") {
    TempDir other;
    REQUIRE(make_test_cert(other.path(), "mx.fake.test"));
    auto client = make_client_context(true, (other.path() / "cert.pem").string());
    REQUIRE(client);
    FakeSmtp server;
    server.respond = tls_reply;
    server.tls_ctx = certs.server.get();
    HostOutcome out = tls_session(server, TlsLevel::kVerify, client->get(), fake_target("mx.fake.test"));
    CHECK(out.next == HostOutcome::Next::kNextAddress);
    CHECK(out.failure.text.find("certificate verify failed") != std::string::npos);
  }
  SECTION("a CA file that cannot be read") {
    CHECK_FALSE(make_client_context(true, (certs.dir.path() / "missing.pem").string()));
  }
}
