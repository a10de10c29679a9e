// pop3d/login_policy_test.cpp: control/pop3loginpolicy and the LOGIN-DELAY decision (seed S11).
#include "pop3d/login_policy.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::TempDir;

namespace {

// The seed's numbers, as the template's commented-out examples give them.
LoginPolicy seed_policy() {
  auto p = LoginPolicy::parse({"tls 0 300", "tls 20M 900", "plain 0 300", "plain\t50M\t900"});
  REQUIRE(p);
  return *p;
}

constexpr uint64_t kMiB = 1024 * 1024;

}  // namespace

TEST_CASE("login policy: rules parse with K, M and G suffixes") {
  auto p = LoginPolicy::parse({"plain 10 1", "tls 2K 2", "plain 3m 3", "tls 1G 4"});
  REQUIRE(p);
  CHECK(p->rules() == std::vector<LoginRule>{{false, 10, 1}, {true, 2048, 2}, {false, 3 * kMiB, 3},
                                             {true, 1024 * kMiB, 4}});
}

TEST_CASE("login policy: a malformed line is an error naming the line") {
  for (const char* line : {"ssl 0 300", "plain 0", "plain 0 300 extra", "plain 5X 300", "plain -1 300",
                           "plain 0 5m", "plain 99999999999999999G 1", "tls M 300"}) {
    INFO(line);
    auto p = LoginPolicy::parse({"plain 0 300", line});
    REQUIRE_FALSE(p);
    CHECK(p.error().message().starts_with("pop3loginpolicy line 2: "));
  }
}

TEST_CASE("login policy: a missing or all-comment file enforces nothing") {
  TempDir dir;
  auto missing = LoginPolicy::load(dir.path() / "pop3loginpolicy");
  REQUIRE(missing);
  CHECK(missing->rules().empty());
  CHECK(missing->interval(false, 500 * kMiB) == 0);
  dir.write("pop3loginpolicy", "# tls 20M 900\n#plain 0 300\n\n");
  auto comments = LoginPolicy::load(dir.path() / "pop3loginpolicy");
  REQUIRE(comments);
  CHECK(comments->rules().empty());
}

TEST_CASE("login policy: the rule with the largest threshold not above the size applies, per kind") {
  LoginPolicy p = seed_policy();
  CHECK(p.interval(true, 0) == 300);
  CHECK(p.interval(true, 20 * kMiB - 1) == 300);
  CHECK(p.interval(true, 20 * kMiB) == 900);
  CHECK(p.interval(false, 20 * kMiB) == 300);
  CHECK(p.interval(false, 50 * kMiB - 1) == 300);
  CHECK(p.interval(false, 50 * kMiB) == 900);
  CHECK(p.interval(false, 5000 * kMiB) == 900);
  // Rules for one kind only: the other kind is not limited; below the smallest threshold neither.
  auto only = LoginPolicy::parse({"tls 1M 600"});
  REQUIRE(only);
  CHECK(only->interval(false, 10 * kMiB) == 0);
  CHECK(only->interval(true, kMiB - 1) == 0);
  CHECK(only->interval(true, kMiB) == 600);
}

TEST_CASE("login policy: the wait is what is left of the interval since the last login") {
  CHECK(login_wait(300, std::nullopt, 1000) == 0);   // never logged in
  CHECK(login_wait(0, 990, 1000) == 0);              // no rule
  CHECK(login_wait(300, 1000, 1000) == 300);
  CHECK(login_wait(300, 900, 1000) == 200);
  CHECK(login_wait(300, 701, 1000) == 1);
  CHECK(login_wait(300, 700, 1000) == 0);
  CHECK(login_wait(300, 1001, 1000) == 300);         // a little ahead: file times are finer
  CHECK(login_wait(300, 5000, 1000) == 0);           // a clock step locks nobody out
}

TEST_CASE("login policy: the last login is the mtime of .tikimail-lastlogin") {
  TempDir dir;
  std::string md = dir.path().string();
  auto none = read_last_login(md);
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
  REQUIRE(touch_last_login(md));
  auto now = read_last_login(md);
  REQUIRE(now);
  REQUIRE(now->has_value());
  CHECK(**now >= ::time(nullptr) - 5);
  CHECK(**now <= ::time(nullptr) + 1);  // file times may run ahead of time(2)
  struct stat st;
  REQUIRE(::stat((dir.path() / ".tikimail-lastlogin").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}
