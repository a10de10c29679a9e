// tlsd/relay_test.cpp: the relay between a real TLS client and a program's socket.
#include "tlsd/relay.h"

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <functional>
#include <thread>

#include "common/test_util.h"
#include "tlsd/context.h"
#include "tlsd/handoff.h"
#include "tlsd/test_tls.h"

using namespace tikimail;
using tikimail::testing::read_all;
using tikimail::testing::TempDir;
using tikimail::testing::TestClient;
using tikimail::testing::TestPair;

namespace {

// tlsd's side in one thread (handshake, then relay), the program in another (`program` gets
// its end of the app socket), the client in the test's own thread.
struct Harness {
  TempDir dir;
  TlsConfig config;
  SslCtx ctx;
  Ssl ssl;
  TestPair net;
  Fd app_program;
  Fd app_tlsd;
  RelayEnd end;
  std::thread tlsd;
  std::thread program;

  Harness(std::chrono::seconds idle, std::function<void(int)> run_program) {
    REQUIRE(testing::make_test_cert(dir.path() / "tls", "mx.test"));
    config.tls_dir = (dir.path() / "tls").string();
    auto made = make_server_context(config);
    REQUIRE(made.has_value());
    ctx = std::move(*made);
    ssl.reset(SSL_new(ctx.get()));
    auto pair = make_socket_pair();
    REQUIRE(pair.has_value());
    app_tlsd = std::move(pair->ours);
    app_program = std::move(pair->theirs);
    tlsd = std::thread([this, idle] {
      int fd = net.server.get();
      if (accept_tls(ssl.get(), fd, fd, Deadline::after_seconds(5))) end = relay(ssl.get(), fd, fd, app_tlsd.get(), idle);
      (void)app_tlsd.close();
    });
    program = std::thread([this, run_program] {
      run_program(app_program.get());
      (void)app_program.close();
    });
  }
  void join() {
    tlsd.join();
    program.join();
  }
};

}  // namespace

TEST_CASE("tlsd relay: bytes go both ways; the client's close_notify ends the program's input") {
  std::string program_got;
  Harness h(std::chrono::seconds(10), [&](int fd) {
    char buf[64];
    ssize_t n = ::read(fd, buf, sizeof buf);  // "hello"
    (void)!::write(fd, "echo:", 5);
    (void)!::write(fd, buf, static_cast<size_t>(n));
    program_got = std::string(buf, static_cast<size_t>(n)) + read_all(fd);  // up to EOF
    (void)!::write(fd, "bye", 3);                                           // still heard after EOF
  });
  TestClient client(h.net.client.get());
  REQUIRE(client.connect());
  REQUIRE(client.write("hello"));
  CHECK(client.read(10) == "echo:hello");
  CHECK(SSL_shutdown(client.ssl()) == 0);  // close_notify sent
  int code = 0;
  CHECK(client.read(100, &code) == "bye");
  CHECK(code == SSL_ERROR_ZERO_RETURN);  // tlsd's close_notify
  h.join();
  CHECK(program_got == "hello");
  CHECK(h.end.why == RelayEnd::Why::kClientClosed);
  CHECK(h.end.to_app == 5);
  CHECK(h.end.to_client == 13);
}

TEST_CASE("tlsd relay: when the program closes, the client gets the rest and a close_notify") {
  Harness h(std::chrono::seconds(10), [](int fd) { (void)!::write(fd, "221 bye\r\n", 9); });
  TestClient client(h.net.client.get());
  REQUIRE(client.connect());
  int code = 0;
  CHECK(client.read(100, &code) == "221 bye\r\n");
  CHECK(code == SSL_ERROR_ZERO_RETURN);
  h.join();
  CHECK(h.end.why == RelayEnd::Why::kAppClosed);
}

TEST_CASE("tlsd relay: a megabyte each way passes through the 16 KiB buffers intact") {
  const size_t kSize = 1 << 20;
  std::string upload(kSize, '\0'), download(kSize, '\0');
  for (size_t i = 0; i < kSize; ++i) {
    upload[i] = static_cast<char>(i * 7);
    download[i] = static_cast<char>(i * 13);
  }
  std::string program_got;
  Harness h(std::chrono::seconds(10), [&](int fd) {
    program_got = read_all(fd);
    std::string_view rest = download;
    while (!rest.empty()) {
      ssize_t n = ::write(fd, rest.data(), rest.size());
      if (n <= 0) break;
      rest.remove_prefix(static_cast<size_t>(n));
    }
  });
  TestClient client(h.net.client.get());
  REQUIRE(client.connect());
  REQUIRE(client.write(upload));
  CHECK(SSL_shutdown(client.ssl()) == 0);
  std::string got = client.read(kSize + 1);
  h.join();
  CHECK(program_got == upload);
  CHECK(got == download);
  CHECK(h.end.to_app == kSize);
  CHECK(h.end.to_client == kSize);
}

TEST_CASE("tlsd relay: no byte either way for the idle limit ends the connection") {
  Harness h(std::chrono::seconds(1), [](int fd) { (void)read_all(fd); });
  TestClient client(h.net.client.get());
  REQUIRE(client.connect());
  int code = 0;
  CHECK(client.read(1, &code).empty());
  CHECK(code == SSL_ERROR_ZERO_RETURN);  // told with a close_notify
  h.join();
  CHECK(h.end.why == RelayEnd::Why::kIdle);
}

TEST_CASE("tlsd relay: a client's EOF without close_notify is its close: the program reads EOF") {
  bool program_saw_eof = false;
  Harness h(std::chrono::seconds(10), [&](int fd) { program_saw_eof = read_all(fd) == "partial"; });
  {
    TestClient client(h.net.client.get());
    REQUIRE(client.connect());
    REQUIRE(client.write("partial"));
  }
  ::shutdown(h.net.client.get(), SHUT_RDWR);  // TCP gone, no close_notify
  h.join();
  CHECK(h.end.why == RelayEnd::Why::kClientClosed);
  CHECK(program_saw_eof);
}
