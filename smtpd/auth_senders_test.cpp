// smtpd/auth_senders_test.cpp: which envelope senders an authenticated account may use.
#include "smtpd/auth_senders.h"

#include <catch2/catch.hpp>

#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::TempDir;

TEST_CASE("authsenders: with no file, an account sends as itself or the null sender only") {
  TempDir dir;
  auto s = AuthSenders::load(dir.path() / "authsenders");
  REQUIRE(s);
  CHECK(s->allows("alice@example.test", "alice@example.test"));
  CHECK(s->allows("alice@example.test", "Alice@EXAMPLE.test"));
  CHECK(s->allows("alice@example.test", ""));
  CHECK_FALSE(s->allows("alice@example.test", "bob@example.test"));
  CHECK_FALSE(s->allows("alice@example.test", "alice@example.test.evil"));
}

TEST_CASE("authsenders: full addresses and @domain exceptions, per account") {
  TempDir dir;
  dir.write("authsenders",
            "# admin may send as anyone in the domain\n"
            "Admin@Example.test:@example.test\n"
            "alice@example.test:sales@example.test\n");
  auto s = AuthSenders::load(dir.path() / "authsenders");
  REQUIRE(s);
  CHECK(s->allows("admin@example.test", "anyone@example.test"));
  CHECK(s->allows("admin@example.test", "Boss@EXAMPLE.TEST"));
  CHECK_FALSE(s->allows("admin@example.test", "anyone@sub.example.test"));
  CHECK_FALSE(s->allows("admin@example.test", "anyone@other.test"));
  CHECK(s->allows("alice@example.test", "sales@example.test"));
  CHECK_FALSE(s->allows("alice@example.test", "info@example.test"));
  CHECK_FALSE(s->allows("bob@example.test", "sales@example.test"));
}

TEST_CASE("authsenders: a malformed line is a configuration error naming the file") {
  for (const char* bad : {"admin@example.test\n", ":@example.test\n", "admin@example.test:\n",
                          "admin@example.test:example.test\n", "admin@example.test:@\n"}) {
    INFO(bad);
    TempDir dir;
    dir.write("authsenders", bad);
    auto s = AuthSenders::load(dir.path() / "authsenders");
    REQUIRE_FALSE(s);
    CHECK(s.error().message().find("authsenders") != std::string::npos);
  }
}
