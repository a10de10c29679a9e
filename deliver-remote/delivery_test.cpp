// deliver-remote/delivery_test.cpp: arguments, control files, and whole runs against loopback
// servers reached through control/smtproutes.
#include "deliver-remote/delivery.h"

#include <catch2/catch.hpp>

#include "deliver-remote/test_server.h"

using namespace tikimail;
using namespace tikimail::testing;
using Kind = RemoteResult::Kind;

TEST_CASE("deliver-remote: envelope addresses in SMTP form", "[deliver-remote]") {
  CHECK(*smtp_path("user@Example.NET", false) == "<user@example.net>");
  CHECK(*smtp_path("", true) == "<>");
  CHECK_FALSE(smtp_path("", false));
  CHECK(*smtp_path("a b@x.test", false) == "<\"a b\"@x.test>");
  CHECK(*smtp_path("q\"x@x.test", false) == "<\"q\\\"x\"@x.test>");
  CHECK(*smtp_path("user@[192.0.2.1]", false) == "<user@[192.0.2.1]>");
  CHECK(*smtp_path("a@b@x.test", false) == "<\"a@b\"@x.test>");
  CHECK_FALSE(smtp_path("nodomain", false));
  CHECK_FALSE(smtp_path("user@bad_domain.test", false));
  CHECK_FALSE(smtp_path("user@[nope]", false));
  CHECK_FALSE(smtp_path(std::string(65, 'a') + "@x.test", false));
  CHECK_FALSE(smtp_path("cr\r@x.test", false));
  CHECK_FALSE(smtp_path("8bit\xc3\xa9@x.test", false));
}

TEST_CASE("deliver-remote: arguments", "[deliver-remote]") {
  auto job = parse_job({"-l", "1834", "example.net", "", "a@example.net", "b@example.net"});
  REQUIRE(job);
  CHECK(job->message_bytes == 1834);
  CHECK(job->domain == "example.net");
  CHECK(job->envelope.sender == "<>");
  CHECK(job->envelope.rcpts == std::vector<std::string>{"<a@example.net>", "<b@example.net>"});
  CHECK(parse_job({"-l", "0", "[192.0.2.1]", "s@x.test", "a@[192.0.2.1]"}));
  CHECK(parse_job({"-l", "18446744073709551615", "x.test", "s@x.test", "a@x.test"})->message_bytes == UINT64_MAX);

  CHECK_FALSE(parse_job({"-l", "10", "example.net", "s@x.test"}));             // no recipient
  std::vector<std::string> many = {"-l", "10", "example.net", ""};
  for (int i = 0; i < 101; ++i) many.push_back("a@example.net");
  CHECK_FALSE(parse_job(many));
  many.pop_back();
  CHECK(parse_job(many));
}

TEST_CASE("deliver-remote: without -l and a plain byte count it is a usage error", "[deliver-remote]") {
  // Reading fd 0 to its end would send the queue entry's envelope and trailer.
  CHECK_FALSE(parse_job({"example.net", "s@x.test", "a@example.net"}));
  CHECK_FALSE(parse_job({"example.net", "-l", "10", "s@x.test", "a@example.net"}));
  for (const char* bad : {"", "-1", "+5", "1e3", "0x10", "12 ", " 12", "18446744073709551616", "ten"}) {
    auto job = parse_job({"-l", bad, "example.net", "s@x.test", "a@example.net"});
    REQUIRE_FALSE(job);
    CHECK(job.error().permanent_failure());
  }
  CHECK_FALSE(parse_job({"-l"}));
  CHECK(parse_job({"-l", "x"}).error().message().starts_with("-l x: not a byte count"));
}

TEST_CASE("deliver-remote: an address SMTP cannot carry fails alone, for good", "[deliver-remote]") {
  // One bad recipient must not hold back the others of its call (it used to end the run with
  // exit 100, which deliver retries for every recipient of the call until the queue lifetime).
  auto job = parse_job({"-l", "10", "example.net", "s@x.test", "a@example.net", std::string(65, 'l') + "@example.net",
                        "\xc3\xa9@example.net", "b@example.net"});
  REQUIRE(job);
  CHECK(job->envelope.rcpts == std::vector<std::string>{"<a@example.net>", "<b@example.net>"});
  REQUIRE(job->decided.size() == 4);
  CHECK_FALSE(job->decided[0]);
  REQUIRE(job->decided[1]);
  CHECK(encode_result(*job->decided[1]).starts_with("D 5.1.3 - l cannot send to <lllll"));
  REQUIRE(job->decided[2]);
  CHECK(encode_result(*job->decided[2]) == "D 5.1.3 - l cannot send to <??@example.net>: not an address SMTP can carry\n");
  CHECK_FALSE(job->decided[3]);

  auto bad_sender = parse_job({"-l", "10", "example.net", "bad", "a@example.net", "b@example.net"});
  REQUIRE(bad_sender);
  CHECK(bad_sender->envelope.rcpts.empty());
  for (const auto& d : bad_sender->decided) CHECK(encode_result(*d).starts_with("D 5.1.7 - l cannot send from <bad>"));

  for (const char* domain : {"Example.net", "exa mple.net", "[nope]"}) {
    auto bad_domain = parse_job({"-l", "10", domain, "s@x.test", "a@x.test"});
    REQUIRE(bad_domain);
    CHECK(bad_domain->envelope.rcpts.empty());
    CHECK(encode_result(*bad_domain->decided.at(0)).starts_with("D 5.1.2 - l cannot send to the domain "));
  }
  // Nothing to send: decided without reading the message or connecting.
  TempDir dir;
  ScopedChdir cd(dir.path());
  std::vector<std::string> warnings;
  auto config = RemoteConfig::load(&warnings);
  REQUIRE(config);
  bad_sender->message_fd = -1;
  auto results = deliver_job(*bad_sender, *config, Log("deliver-remote-test"));
  REQUIRE(results);
  REQUIRE(results->size() == 2);
  CHECK((*results)[1].status == "5.1.7");
}

TEST_CASE("deliver-remote: control files", "[deliver-remote]") {
  TempDir dir;
  ScopedChdir cd(dir.path());
  std::vector<std::string> warnings;
  dir.write("control/me", "me.example.test\n");
  auto config = RemoteConfig::load(&warnings);
  REQUIRE(config);
  CHECK(config->helo == "me.example.test");
  CHECK(config->connect_timeout == 30);
  CHECK(config->timeouts.dot == 600);
  CHECK(config->ca_file.empty());

  dir.write("control/helohost", "out.example.test\n");
  dir.write("control/timeoutremote", "60\n");
  dir.write("control/timeoutconnect", "5\n");
  dir.write("control/tlsremoteca", "");
  dir.write("control/smtproutes", "what\n:[127.0.0.1]:2525\n");
  config = RemoteConfig::load(&warnings);
  REQUIRE(config);
  CHECK(config->helo == "out.example.test");
  CHECK(config->timeouts.dot == 60);
  CHECK(config->connect_timeout == 5);
  CHECK(config->ca_file == "control/tlsremoteca");
  CHECK(warnings.size() == 1);
  CHECK(config->routes.find("x.test")->port == 2525);

  dir.write("control/timeoutconnect", "0\n");
  CHECK_FALSE(RemoteConfig::load(&warnings));
  dir.write("control/timeoutconnect", "301\n");
  CHECK_FALSE(RemoteConfig::load(&warnings));
  dir.write("control/timeoutconnect", "30\n");
  dir.write("control/timeoutremote", "3601\n");
  CHECK_FALSE(RemoteConfig::load(&warnings));
}

namespace {

// One run of deliver_job in a fresh prefix whose default route is the loopback listener.
struct Prefix {
  TempDir dir;
  TcpListener listener;
  Prefix(const std::string& tlsremote = "") {
    dir.write("control/smtproutes", fmt::format(":[127.0.0.1]:{}\n", listener.port()));
    dir.write("control/helohost", "here.test\n");
    dir.write("control/timeoutremote", "5\n");
    if (!tlsremote.empty()) dir.write("control/tlsremote", tlsremote);
  }
  std::vector<RemoteResult> run(std::vector<FakeSmtp*> servers, std::vector<std::string> rcpts) {
    ScopedChdir cd(dir.path());
    std::vector<std::string> warnings;
    auto config = RemoteConfig::load(&warnings);
    REQUIRE(config);
    TestMessage message(dir, "Subject: whole run\n\nbody\n");
    std::vector<std::string> args = {"-l", std::to_string(message.bytes), "remote.test", "sender@here.test"};
    args.insert(args.end(), rcpts.begin(), rcpts.end());
    auto job = parse_job(args);
    REQUIRE(job);
    job->message_fd = message.fd.get();
    CHECK(job->message_bytes == message.bytes);
    std::thread thread = listener.serve(servers);
    auto results = deliver_job(*job, *config, Log("deliver-remote-test"));
    thread.join();
    REQUIRE(results);
    return *results;
  }
};

}  // namespace

TEST_CASE("deliver-remote: a message file shorter than -l says is an error before any connection",
          "[deliver-remote]") {
  Prefix prefix;  // nothing is served: a run that connected would end with results, not an error
  ScopedChdir cd(prefix.dir.path());
  std::vector<std::string> warnings;
  auto config = RemoteConfig::load(&warnings);
  REQUIRE(config);
  TestMessage message(prefix.dir, "Subject: x\n\nbody\n");
  const uint64_t file_size = message.bytes + kEntryEnvelope.size() + kQueueFileTrailer;
  auto job = parse_job({"-l", std::to_string(file_size + 1), "remote.test", "s@here.test", "a@remote.test"});
  REQUIRE(job);
  job->message_fd = message.fd.get();
  auto results = deliver_job(*job, *config, Log("deliver-remote-test"));
  REQUIRE_FALSE(results);
  CHECK(results.error().temporary_failure());
  CHECK(results.error().message().find("ends after") != std::string::npos);
}

TEST_CASE("deliver-remote: a whole run through a route", "[deliver-remote]") {
  Prefix prefix;
  FakeSmtp server;
  server.respond = [](std::string_view c) -> std::string {
    return c == "RCPT TO:<b@remote.test>" ? "550 5.1.1 no\r\n" : standard_reply(c);
  };
  auto results = prefix.run({&server}, {"a@remote.test", "b@remote.test"});
  REQUIRE(results.size() == 2);
  std::string host = fmt::format("[127.0.0.1]:{}", prefix.listener.port());
  CHECK(encode_result(results[0]) == fmt::format("K 2.0.0 {} r 250 2.0.0 Ok: queued as 42\n", host));
  CHECK(encode_result(results[1]) == fmt::format("D 5.1.1 {} r 550 5.1.1 no\n", host));
  CHECK(server.commands[0] == "EHLO here.test");
  CHECK(server.data == "Subject: whole run\r\n\r\nbody\r\n.\r\n");
}

TEST_CASE("deliver-remote: a bad recipient keeps its place among the results", "[deliver-remote]") {
  Prefix prefix;
  FakeSmtp server;
  auto results = prefix.run({&server}, {"a@remote.test", "\x01@remote.test", "b@remote.test"});
  REQUIRE(results.size() == 3);
  CHECK(results[0].kind == Kind::kDelivered);
  CHECK(results[1].kind == Kind::kPermanent);
  CHECK(results[1].status == "5.1.3");
  CHECK(results[2].kind == Kind::kDelivered);
  CHECK(std::count_if(server.commands.begin(), server.commands.end(),
                      [](const std::string& c) { return c.starts_with("RCPT"); }) == 2);
}

TEST_CASE("deliver-remote: the last address's failure is every recipient's", "[deliver-remote]") {
  SECTION("5xx greeting: permanent") {
    Prefix prefix;
    FakeSmtp server;
    server.greeting = "554 5.7.1 not you\r\n";
    auto results = prefix.run({&server}, {"a@remote.test", "b@remote.test"});
    for (const RemoteResult& r : results) {
      CHECK(r.kind == Kind::kPermanent);
      CHECK(r.text == "554 5.7.1 not you");
    }
  }
  SECTION("nothing listening: temporary, no host") {
    Prefix prefix;
    TempDir other;
    uint16_t closed_port;
    {
      TcpListener gone;
      closed_port = gone.port();
    }
    prefix.dir.write("control/smtproutes", fmt::format(":[127.0.0.1]:{}\n", closed_port));
    auto results = prefix.run({}, {"a@remote.test"});
    CHECK(results[0].kind == Kind::kTemporary);
    CHECK(results[0].status == "4.4.1");
    CHECK(encode_result(results[0]).substr(0, 12) == "Z 4.4.1 - l ");
  }
}

TEST_CASE("deliver-remote: may: after a failed handshake, once more without TLS", "[deliver-remote]") {
  Prefix prefix(":may\n");
  auto offer_tls = [](std::string_view c) -> std::string {
    if (c.substr(0, 4) == "EHLO") return "250-fake.test\r\n250 STARTTLS\r\n";
    if (c == "STARTTLS") return "220 go ahead\r\n";
    return standard_reply(c);
  };
  FakeSmtp broken, plain;
  broken.respond = plain.respond = offer_tls;
  broken.close_after_starttls = true;
  auto results = prefix.run({&broken, &plain}, {"a@remote.test"});
  CHECK(results[0].kind == Kind::kDelivered);
  CHECK(std::find(plain.commands.begin(), plain.commands.end(), "STARTTLS") == plain.commands.end());
}

TEST_CASE("deliver-remote: encrypt: no STARTTLS means no delivery", "[deliver-remote]") {
  Prefix prefix("remote.test:encrypt\n");
  FakeSmtp server;
  auto results = prefix.run({&server}, {"a@remote.test"});
  CHECK(results[0].kind == Kind::kTemporary);
  CHECK(results[0].status == "4.7.5");
}
