// relayctl/commands_test.cpp: relayctl's argument parser and commands against a real prefix
// in a temp dir.
#include "relayctl/commands.h"

#include <catch2/catch.hpp>

#include "common/test_util.h"
#include "relayctl/relay_db.h"

using namespace tikimail;
using tikimail::testing::ScopedChdir;
using tikimail::testing::TempDir;

namespace {

constexpr time_t kNow = 1700000000;

// A prefix with an empty relay/, entered for the test's lifetime.
struct Prefix {
  Prefix() : cd(dir.path()) { std::filesystem::create_directory(dir.path() / "relay"); }
  TempDir dir;
  ScopedChdir cd;
};

Result<RelayOutcome> run(std::vector<std::string> args, time_t now = kNow) {
  auto request = parse_relay_request(args);
  if (!request) return request.error();
  return run_relay_request(*request, now);
}

}  // namespace

TEST_CASE("relayctl: usage errors and bad IPs are permanent (exit 100)") {
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{}, {"bogus"}, {"allow"}, {"allow", "192.0.2.1", "a", "b"}, {"check"},
                                             {"check", "192.0.2.1", "x"}, {"list", "x"}, {"purge", "x"}}) {
    auto r = parse_relay_request(args);
    REQUIRE_FALSE(r);
    CHECK(relayctl_exit_code(r.error()) == 100);
    CHECK(r.error().message() == kRelayctlUsage);
  }
  for (const char* bad : {"999.1.1.1", "..", "../../etc/x", "example.test", ""}) {
    INFO(bad);
    auto r = parse_relay_request({"check", bad});
    REQUIRE_FALSE(r);
    CHECK(relayctl_exit_code(r.error()) == 100);
    CHECK(r.error().message().starts_with("not an IP address"));
  }
}

TEST_CASE("relayctl: the IP argument is taken in its canonical form") {
  auto r = parse_relay_request({"allow", "::ffff:192.0.2.1", "alice@example.test"});
  REQUIRE(r);
  CHECK(r->verb == RelayVerb::kAllow);
  CHECK(r->ip == "192.0.2.1");
  CHECK(r->login == "alice@example.test");
}

TEST_CASE("relayctl: allow uses the default window of 1200 s, then check says yes") {
  Prefix p;
  auto allowed = run({"allow", "192.0.2.1", "alice@example.test"});
  REQUIRE(allowed);
  CHECK(allowed->exit_code == 0);
  CHECK(allowed->event == "allow ip=192.0.2.1 login=alice@example.test expiry=1700001200");
  CHECK(p.dir.read("relay/192.0.2.1") == "1700001200 1700000000 alice@example.test\n");
  CHECK(run({"check", "192.0.2.1"})->exit_code == 0);
  CHECK(run({"check", "192.0.2.1"}, kNow + 1199)->exit_code == 0);
  CHECK(run({"check", "192.0.2.1"}, kNow + 1200)->exit_code == 1);
  CHECK(run({"check", "192.0.2.2"})->exit_code == 1);
}

TEST_CASE("relayctl: allow reads control/relaywindow; a bad one is temporary (111)") {
  Prefix p;
  p.dir.write("control/relaywindow", "# comment\n60\n");
  REQUIRE(run({"allow", "192.0.2.1"}));
  CHECK(p.dir.read("relay/192.0.2.1") == "1700000060 1700000000 -\n");
  p.dir.write("control/relaywindow", "twenty minutes\n");
  auto bad = run({"allow", "192.0.2.1"});
  REQUIRE_FALSE(bad);
  CHECK(relayctl_exit_code(bad.error()) == 111);
  p.dir.write("control/relaywindow", "99999999999\n");
  CHECK_FALSE(run({"allow", "192.0.2.1"}));
}

TEST_CASE("relayctl: allow refuses a login with spaces (exit 100)") {
  Prefix p;
  auto r = run({"allow", "192.0.2.1", "a b"});
  REQUIRE_FALSE(r);
  CHECK(relayctl_exit_code(r.error()) == 100);
}

TEST_CASE("relayctl: list shows live entries only: ip, age, seconds left, login") {
  Prefix p;
  RelayDb db(kRelayDir);
  REQUIRE(db.allow("192.0.2.10", "ten@example.test", kNow - 100, kNow + 1100));
  REQUIRE(db.allow("192.0.2.9", "-", kNow - 30, kNow + 1170));
  REQUIRE(db.allow("192.0.2.8", "old", kNow - 2000, kNow - 800));
  auto listed = run({"list"});
  REQUIRE(listed);
  CHECK(listed->exit_code == 0);
  CHECK(listed->out == "192.0.2.9 30 1170 -\n192.0.2.10 100 1100 ten@example.test\n");
}

TEST_CASE("relayctl: purge removes what expired and says how many") {
  Prefix p;
  RelayDb db(kRelayDir);
  REQUIRE(db.allow("192.0.2.1", "a", kNow, kNow + 10));
  REQUIRE(db.allow("192.0.2.2", "b", kNow - 20, kNow - 10));
  p.dir.write("relay/192.0.2.3", "junk");
  auto purged = run({"purge"});
  REQUIRE(purged);
  CHECK(purged->event == "purge removed=2");
  CHECK(purged->out.empty());
  CHECK(run({"purge"})->event == "purge removed=0");
  CHECK(run({"list"})->out == "192.0.2.1 0 10 a\n");
}

TEST_CASE("relayctl: an unreadable db is a temporary failure (111), never 'allowed'") {
  Prefix p;
  std::filesystem::remove(p.dir.path() / "relay");
  p.dir.write("relay", "not a directory\n");
  auto r = run({"check", "192.0.2.1"});
  REQUIRE_FALSE(r);
  CHECK(relayctl_exit_code(r.error()) == 111);
}
