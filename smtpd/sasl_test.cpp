// smtpd/sasl_test.cpp: base64 lines and PLAIN messages as clients send them.
#include "smtpd/sasl.h"

#include <catch2/catch.hpp>

using namespace tikimail;
using namespace std::string_literals;

TEST_CASE("sasl: base64 decodes strictly, with padding") {
  CHECK(decode_base64("YWxpY2U=") == "alice");
  CHECK(decode_base64("AGFsaWNlAHB3") == "\0alice\0pw"s);
  CHECK(decode_base64("=") == "");  // RFC 4954: the empty initial response
  CHECK_FALSE(decode_base64(""));
  CHECK_FALSE(decode_base64("YWxpY2U"));    // padding missing
  CHECK_FALSE(decode_base64("YWxp Y2U="));  // a space
  CHECK_FALSE(decode_base64("YW!pY2U="));
  CHECK_FALSE(decode_base64("YWxpY2U=YWxp"));
}

TEST_CASE("sasl: base64 round trip") {
  for (std::string s : {"a"s, "ab"s, "abc"s, "\0user\0pass"s, std::string(300, '\xff')})
    CHECK(decode_base64(encode_base64(s)).value_or("x") == s);
  CHECK(encode_base64("Username:") == "VXNlcm5hbWU6");
  CHECK(encode_base64("Password:") == "UGFzc3dvcmQ6");
}

TEST_CASE("sasl: PLAIN is authzid NUL authcid NUL password") {
  auto m = parse_plain("\0alice@example.test\0secret pw"s);
  REQUIRE(m);
  CHECK(m->authzid.empty());
  CHECK(m->authcid == "alice@example.test");
  CHECK(m->password.view() == "secret pw");
  auto z = parse_plain("admin\0alice\0pw"s);
  REQUIRE(z);
  CHECK(z->authzid == "admin");
  CHECK_FALSE(parse_plain("alice"));
  CHECK_FALSE(parse_plain("\0alice"s));
  CHECK_FALSE(parse_plain("\0\0pw"s));        // no user
  CHECK_FALSE(parse_plain("\0alice\0"s));     // no password
  CHECK_FALSE(parse_plain("\0a\0b\0c"s));     // a third NUL
}
