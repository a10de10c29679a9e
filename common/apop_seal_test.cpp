// common/apop_seal_test.cpp: the server key file and sealing of APOP secrets.
#include "common/apop_seal.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::TempDir;

TEST_CASE("apop seal: a sealed password opens to the same bytes and never shows them") {
  ApopKey key = ApopKey::random();
  auto sealed = seal_apop_secret(key, "tanstaaf");
  REQUIRE(sealed);
  CHECK(sealed->find("tanstaaf") == std::string::npos);
  CHECK(sealed->find(':') == std::string::npos);  // it lives in a ':'-separated accounts line
  CHECK(sealed->find('\n') == std::string::npos);
  auto opened = unseal_apop_secret(key, *sealed);
  REQUIRE(opened);
  CHECK(opened->view() == "tanstaaf");
  auto again = seal_apop_secret(key, "tanstaaf");
  REQUIRE(again);
  CHECK(*again != *sealed);  // a fresh nonce each time
}

TEST_CASE("apop seal: a tampered secret, another key or garbage does not open") {
  ApopKey key = ApopKey::random();
  auto sealed = seal_apop_secret(key, "secret pass");
  REQUIRE(sealed);
  std::string tampered = *sealed;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  auto bad = unseal_apop_secret(key, tampered);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().permanent_failure());
  ApopKey other = ApopKey::random();
  CHECK_FALSE(unseal_apop_secret(other, *sealed));
  CHECK_FALSE(unseal_apop_secret(key, "not base64 !"));
  CHECK_FALSE(unseal_apop_secret(key, "c2VhbGVk"));  // base64, but shorter than nonce and MAC
  CHECK_FALSE(unseal_apop_secret(key, ""));
}

TEST_CASE("apop seal: the key file is made once, mode 0600, and read back the same") {
  TempDir dir;
  std::string path = (dir.path() / "apopkey").string();
  CHECK_FALSE(load_apop_key(path));  // missing: temporary
  auto made = load_or_create_apop_key(path);
  REQUIRE(made);
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(dir.read("apopkey").size() == 65);  // 64 hex digits and LF
  auto sealed = seal_apop_secret(*made, "pw");
  REQUIRE(sealed);
  auto loaded = load_or_create_apop_key(path);  // exists: the same key, not a new one
  REQUIRE(loaded);
  CHECK(unseal_apop_secret(*loaded, *sealed)->view() == "pw");
}

TEST_CASE("apop seal: a malformed key file is a temporary error") {
  TempDir dir;
  for (const char* text : {"", "abcd\n", "zz", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00\n"}) {
    dir.write("apopkey", text);
    auto key = load_apop_key((dir.path() / "apopkey").string());
    REQUIRE_FALSE(key);
    CHECK(key.error().temporary_failure());
  }
  dir.write("apopkey", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
  CHECK(load_apop_key((dir.path() / "apopkey").string()));
}
