// tlsd/program_test.cpp: the command line, and running the program with its fds,
// environment and ids.
#include "tlsd/program.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include "tlsd/handoff.h"
#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::read_all;

namespace {

Result<Options> parse(std::vector<const char*> args) {
  args.insert(args.begin(), "tlsd");
  return parse_options(static_cast<int>(args.size()), args.data());
}

}  // namespace

TEST_CASE("tlsd options: -s stands alone") {
  auto o = parse({"-s"});
  REQUIRE(o.has_value());
  CHECK(o->started);
  CHECK(o->argv.empty());
  CHECK_FALSE(parse({"-s", "bin/smtpd"}).has_value());
  CHECK_FALSE(parse({"-s", "-i"}).has_value());
  CHECK_FALSE(parse({"-s", "-u", "1", "-g", "1"}).has_value());
  CHECK_FALSE(parse({"-s", "-U", "1", "-G", "1"}).has_value());
  CHECK_FALSE(parse({"-s", "--", "bin/smtpd"}).has_value());
}

TEST_CASE("tlsd options: modes, ids and the program after --") {
  auto o = parse({"-i", "-u", "1001", "-g", "1002", "-U", "1003", "-G", "1004", "--", "bin/smtpd", "-x"});
  REQUIRE(o.has_value());
  CHECK(o->implicit);
  REQUIRE(o->program.has_value());
  CHECK(o->program->uid == 1001);
  CHECK(o->program->gid == 1002);
  REQUIRE(o->self.has_value());
  CHECK(o->self->uid == 1003);
  CHECK(o->self->gid == 1004);
  CHECK(o->argv == std::vector<std::string>{"bin/smtpd", "-x"});

  auto plain = parse({"bin/pop3d", "bin/checkpassword"});
  REQUIRE(plain.has_value());
  CHECK_FALSE(plain->implicit);
  CHECK_FALSE(plain->program.has_value());
  CHECK(plain->argv.size() == 2);
}

TEST_CASE("tlsd options: mistakes are refused with the usage") {
  CHECK_FALSE(parse({"--"}).has_value());
  CHECK_FALSE(parse({"-u", "1001", "--", "cat"}).has_value());      // -u without -g
  CHECK_FALSE(parse({"-U", "1", "--", "cat"}).has_value());         // -U without -G
  CHECK_FALSE(parse({"-u", "0", "-g", "0", "--", "cat"}).has_value());  // never root
  CHECK_FALSE(parse({"-u", "nobody", "-g", "1", "--", "cat"}).has_value());
  CHECK_FALSE(parse({"-x", "--", "cat"}).has_value());
  CHECK_FALSE(parse({"-u"}).has_value());
}

TEST_CASE("tlsd program: the child gets the socket on 0 and 1, its environment, and not root") {
  auto pair = make_socket_pair();
  REQUIRE(pair.has_value());
  ChildSetup setup;
  setup.stdio = pair->theirs.get();
  setup.setenv = {{"TLS", "TLSv1.3"}};
  setup.unsetenv = {"TLSCTL"};
  ::setenv("TLSCTL", "9", 1);
  std::optional<Ids> ids;
  if (::geteuid() == 0) ids = Ids{65534, 65534};
  auto pid = start_program({"/bin/sh", "-c", "echo \"$(id -u) $TLS ${TLSCTL-unset}\""}, ids, setup);
  ::unsetenv("TLSCTL");
  REQUIRE(pid.has_value());
  (void)pair->theirs.close();
  std::string said = read_all(pair->ours.get());
  CHECK(wait_program(*pid) == 0);
  CHECK(said == std::to_string(ids ? 65534 : ::getuid()) + " TLSv1.3 unset\n");
}

TEST_CASE("tlsd program: as root without -u the program does not run") {
  if (::geteuid() != 0) return;  // only root can be refused
  auto pid = start_program({"/bin/true"}, std::nullopt, ChildSetup{});
  REQUIRE(pid.has_value());
  CHECK(wait_program(*pid) == 111);
}

TEST_CASE("tlsd program: the exit status is the program's; a signal or a failed exec gives 111") {
  std::optional<Ids> ids;
  if (::geteuid() == 0) ids = Ids{65534, 65534};
  auto exits = start_program({"/bin/sh", "-c", "exit 3"}, ids, ChildSetup{});
  REQUIRE(exits.has_value());
  CHECK(wait_program(*exits) == 3);
  auto killed = start_program({"/bin/sh", "-c", "kill -9 $$"}, ids, ChildSetup{});
  REQUIRE(killed.has_value());
  CHECK(wait_program(*killed) == 111);
  auto missing = start_program({"/no/such/program"}, ids, ChildSetup{});
  REQUIRE(missing.has_value());
  CHECK(wait_program(*missing) == 111);
}
