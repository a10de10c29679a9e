// common/password_test.cpp: argon2id hashing and verification; the password rules.
#include "common/password.h"

#include <catch2/catch.hpp>

using namespace tikimail;

TEST_CASE("password: the hash is an argon2id crypto_pwhash_str string with a fresh salt") {
  auto a = hash_password("correct horse");
  auto b = hash_password("correct horse");
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->starts_with("$argon2id$v=19$m=65536,t=2,p=1$"));
  CHECK(a->find(':') == std::string::npos);  // it fits a users/accounts field
  CHECK(*a != *b);
}

TEST_CASE("password: verify accepts the password and nothing else") {
  auto hash = hash_password("correct horse");
  REQUIRE(hash);
  CHECK(verify_password(*hash, "correct horse"));
  CHECK_FALSE(verify_password(*hash, "correct horsE"));
  CHECK_FALSE(verify_password(*hash, "correct horse "));
  CHECK_FALSE(verify_password(*hash, ""));
  CHECK_FALSE(verify_password("!", "correct horse"));
  CHECK_FALSE(verify_password("", "correct horse"));
  CHECK_FALSE(verify_password("$argon2id$garbage", "correct horse"));
  CHECK_FALSE(verify_password(std::string(200, '$'), "correct horse"));
  std::string tampered = *hash;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  CHECK_FALSE(verify_password(tampered, "correct horse"));
}

TEST_CASE("password: the longest password is kMaxPassword bytes") {
  std::string longest(kMaxPassword, 'p');
  auto hash = hash_password(longest);
  REQUIRE(hash);
  CHECK(verify_password(*hash, longest));
  auto too_long = hash_password(longest + "p");
  REQUIRE_FALSE(too_long);
  CHECK(too_long.error().permanent_failure());
}

TEST_CASE("password: empty passwords and NUL, CR or LF inside are refused") {
  using namespace std::string_literals;
  CHECK(check_password("a"));
  CHECK(check_password("with space and ünïcode"));
  for (const std::string& bad : {""s, "a\0b"s, "a\rb"s, "a\nb"s, "ab\r\n"s}) {
    CHECK(check_password(bad).permanent_failure());
    CHECK_FALSE(hash_password(bad));
  }
  auto hash = hash_password("ab");
  REQUIRE(hash);
  CHECK_FALSE(verify_password(*hash, "ab\n"s));
}

TEST_CASE("password: a Secret holds at most kMaxPassword + 2 bytes and moves without copying") {
  Secret s;
  bool all_taken = true;
  for (size_t i = 0; i < kMaxPassword + 2; ++i) all_taken = s.push_back('x') && all_taken;
  CHECK(all_taken);
  CHECK_FALSE(s.push_back('x'));
  CHECK(s.size() == kMaxPassword + 2);
  const char* bytes = s.view().data();
  Secret moved(std::move(s));
  CHECK(moved.view().data() == bytes);
  CHECK(Secret("pw").view() == "pw");
}
