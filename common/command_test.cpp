// common/command_test.cpp: splitting command lines and comparing verbs without case.
#include "common/command.h"

#include <catch2/catch.hpp>

using namespace tikimail;

TEST_CASE("command: the verb ends at the first space, the argument is kept as sent") {
  auto c = split_command("MAIL FROM:<a@b.test>  SIZE=1");
  CHECK(c.verb == "MAIL");
  CHECK(c.arg == "FROM:<a@b.test>  SIZE=1");
  auto bare = split_command("QUIT");
  CHECK(bare.verb == "QUIT");
  CHECK(bare.arg.empty());
  CHECK(split_command("NOOP ").arg.empty());
}

TEST_CASE("command: ASCII letters compare without case, nothing else does") {
  CHECK(equal_nocase("ehlo", "EHLO"));
  CHECK_FALSE(equal_nocase("EHL", "EHLO"));
  CHECK_FALSE(equal_nocase("EHLOX", "EHLO"));
  CHECK(starts_with_nocase("from:<x>", "FROM:"));
  CHECK_FALSE(starts_with_nocase("FRO", "FROM:"));
  CHECK_FALSE(equal_nocase("\xc5hlo", "EHLO"));
}
