// deliver-remote/routes_test.cpp: control/smtproutes and control/tlsremote.
#include "deliver-remote/routes.h"

#include <catch2/catch.hpp>

#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::TempDir;

TEST_CASE("deliver-remote: smtproutes lines", "[deliver-remote]") {
  auto r = parse_route_line("example.net:mail.example.org");
  REQUIRE(r);
  CHECK(r->first == "example.net");
  CHECK(r->second.host == "mail.example.org");
  CHECK(r->second.port == 25);
  CHECK_FALSE(r->second.literal);

  r = parse_route_line(":Smart.Example.org:587");
  REQUIRE(r);
  CHECK(r->first.empty());
  CHECK(r->second.host == "smart.example.org");
  CHECK(r->second.port == 587);

  r = parse_route_line(".example.net:[192.0.2.1]:2525");
  REQUIRE(r);
  CHECK(r->first == ".example.net");
  CHECK(r->second.host == "192.0.2.1");
  CHECK(r->second.literal);
  CHECK(r->second.port == 2525);

  r = parse_route_line("example.net:[IPv6:2001:db8::1]");
  REQUIRE(r);
  CHECK(r->second.host == "2001:db8::1");
  CHECK(r->second.port == 25);
  r = parse_route_line("example.net:[::1]:26");
  REQUIRE(r);
  CHECK(r->second.host == "::1");
  CHECK(r->second.port == 26);

  r = parse_route_line("example.net:192.0.2.7:26");  // a bare IPv4 address is a literal
  REQUIRE(r);
  CHECK(r->second.host == "192.0.2.7");
  CHECK(r->second.literal);
  CHECK(r->second.port == 26);

  r = parse_route_line("[192.0.2.9]:relay.example.org");
  REQUIRE(r);
  CHECK(r->first == "[192.0.2.9]");

  r = parse_route_line("example.net:");  // no route: DNS
  REQUIRE(r);
  CHECK(r->second.host.empty());

  for (const char* bad : {"example.net", "exa mple.net:x", "example.net:host:0", "example.net:host:65536",
                          "example.net:host:", "example.net:host:25x", "example.net:[300.1.1.1]",
                          "example.net:[192.0.2.1", "example.net:[192.0.2.1]25", "example.net:bad_host",
                          "..example.net:x", "[nope]:x"})
    CHECK_FALSE(parse_route_line(bad));
}

TEST_CASE("deliver-remote: the most specific rule wins", "[deliver-remote]") {
  DomainRules<std::string> rules;
  rules.add("", "default");
  rules.add(".example.net", "sub");
  rules.add(".deep.example.net", "deeper");
  rules.add("example.net", "exact");
  rules.add("example.net", "ignored: the first line counts");
  CHECK(*rules.find("example.net") == "exact");
  CHECK(*rules.find("a.example.net") == "sub");
  CHECK(*rules.find("x.deep.example.net") == "deeper");
  CHECK(*rules.find("deep.example.net") == "sub");
  CHECK(*rules.find("other.test") == "default");
  CHECK(*rules.find("badexample.net") == "default");
  DomainRules<std::string> none;
  none.add(".example.net", "sub");
  CHECK(none.find("example.net") == nullptr);
}

TEST_CASE("deliver-remote: control files with malformed lines", "[deliver-remote]") {
  TempDir dir;
  std::vector<std::string> warnings;
  auto missing = load_smtproutes(dir.path() / "smtproutes", &warnings);
  REQUIRE(missing);
  CHECK(missing->size() == 0);

  dir.write("smtproutes", "# routes\nexample.net:mx.example.org:2525\nbroken line\n:smart.example.org\nkeep.test:\n");
  auto routes = load_smtproutes(dir.path() / "smtproutes", &warnings);
  REQUIRE(routes);
  CHECK(routes->size() == 3);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("broken line") != std::string::npos);
  CHECK(routes->find("example.net")->port == 2525);
  CHECK(routes->find("keep.test")->host.empty());
  CHECK(routes->find("else.test")->host == "smart.example.org");

  warnings.clear();
  dir.write("tlsremote", ":may\nbank.test:verify\n.bank.test:Encrypt\n[IPv6:2001:db8::1]:none\nx.test:maybe\n");
  auto tls = load_tlsremote(dir.path() / "tlsremote", &warnings);
  REQUIRE(tls);
  CHECK(warnings.size() == 1);
  CHECK(*tls->find("bank.test") == TlsLevel::kVerify);
  CHECK(*tls->find("a.bank.test") == TlsLevel::kEncrypt);
  CHECK(*tls->find("[ipv6:2001:db8::1]") == TlsLevel::kNone);
  CHECK(*tls->find("x.test") == TlsLevel::kMay);
}
