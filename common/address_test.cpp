// common/address_test.cpp: RFC 5321 paths, the relay tricks, and the length limits.
#include "common/address.h"

#include <catch2/catch.hpp>

using namespace tikimail;

static PathResult rcpt(std::string_view s) { return parse_path(s, false, true); }
static PathResult mail(std::string_view s) { return parse_path(s, true, false); }

TEST_CASE("address: a plain path gives local part and lowercase domain") {
  auto r = rcpt("<Alice@Example.TEST>");
  REQUIRE(r.ok);
  CHECK(r.path.address.local == "Alice");
  CHECK(r.path.address.domain == "example.test");
  CHECK(r.path.params.empty());
}

TEST_CASE("address: parameters after the path are returned trimmed") {
  auto r = mail("<a@b.test>  SIZE=100 BODY=8BITMIME ");
  REQUIRE(r.ok);
  CHECK(r.path.params == "SIZE=100 BODY=8BITMIME");
}

TEST_CASE("address: the null path only where allowed") {
  CHECK(mail("<>").ok);
  CHECK(mail("<>").path.address.is_null());
  CHECK_FALSE(rcpt("<>").ok);
}

TEST_CASE("address: bare postmaster only for RCPT, any case") {
  auto r = rcpt("<PostMaster>");
  REQUIRE(r.ok);
  CHECK(r.path.address.str() == "postmaster");
  CHECK_FALSE(mail("<postmaster>").ok);
  CHECK_FALSE(rcpt("<alice>").ok);
}

TEST_CASE("address: a source route is dropped; the final mailbox is the destination") {
  auto r = rcpt("<@example.test,@relay.test:user@other.test>");
  REQUIRE(r.ok);
  CHECK(r.path.address.str() == "user@other.test");
  CHECK_FALSE(rcpt("<@example.test user@other.test>").ok);
}

TEST_CASE("address: quoted local parts are unquoted, and requoted for SMTP") {
  auto r = rcpt("<\"user@other.test\"@example.test>");
  REQUIRE(r.ok);
  CHECK(r.path.address.local == "user@other.test");
  CHECK(r.path.address.domain == "example.test");
  CHECK(r.path.address.smtp() == "<\"user@other.test\"@example.test>");
  auto escaped = rcpt("<\"a\\\"b\"@x.test>");
  REQUIRE(escaped.ok);
  CHECK(escaped.path.address.local == "a\"b");
  CHECK(escaped.path.address.smtp() == "<\"a\\\"b\"@x.test>");
}

TEST_CASE("address: percent and bang stay part of the local part") {
  auto r = rcpt("<user%other.test@example.test>");
  REQUIRE(r.ok);
  CHECK(r.path.address.local == "user%other.test");
  CHECK(r.path.address.domain == "example.test");
  auto bang = rcpt("<other.test!user@example.test>");
  REQUIRE(bang.ok);
  CHECK(bang.path.address.domain == "example.test");
}

TEST_CASE("address: address literals are recognized and validated") {
  auto r = rcpt("<user@[127.0.0.1]>");
  REQUIRE(r.ok);
  CHECK(r.path.address.literal);
  CHECK(r.path.address.domain == "[127.0.0.1]");
  CHECK(rcpt("<user@[IPv6:::1]>").ok);
  CHECK_FALSE(rcpt("<user@[300.0.0.1]>").ok);
  CHECK_FALSE(rcpt("<user@[example.test]>").ok);
}

TEST_CASE("address: malformed domains and local parts are refused") {
  CHECK_FALSE(rcpt("<user@example.test.>").ok);   // trailing dot
  CHECK_FALSE(rcpt("<user@example..test>").ok);
  CHECK_FALSE(rcpt("<user@-example.test>").ok);
  CHECK_FALSE(rcpt("<user.@example.test>").ok);
  CHECK_FALSE(rcpt("<.user@example.test>").ok);
  CHECK_FALSE(rcpt("<us er@example.test>").ok);
  CHECK_FALSE(rcpt("<user@example.test").ok);
  CHECK_FALSE(rcpt("<user@example.test>x").ok);
  CHECK_FALSE(rcpt("<\xc3\xa4@example.test>").ok);
  CHECK_FALSE(rcpt("<\"unterminated@example.test>").ok);
}

TEST_CASE("address: lenient forms kept from practice") {
  CHECK(rcpt(" <a@example.test>").ok);
  auto bare = mail("a@example.test SIZE=5");
  REQUIRE(bare.ok);
  CHECK(bare.path.address.str() == "a@example.test");
  CHECK(bare.path.params == "SIZE=5");
}

TEST_CASE("address: RFC 5321 length limits") {
  std::string local64(64, 'a'), local65(65, 'a');
  CHECK(rcpt("<" + local64 + "@x.test>").ok);
  auto r = rcpt("<" + local65 + "@x.test>");
  CHECK_FALSE(r.ok);
  CHECK(r.error == PathError::kTooLong);
  // A path of 257 octets with its brackets is too long even with a valid mailbox.
  std::string domain;
  while (domain.size() < 240) domain += "abcdefghi.";
  domain += "test";
  auto long_path = rcpt("<" + local64 + "@" + domain + ">");
  CHECK_FALSE(long_path.ok);
  CHECK(long_path.error == PathError::kTooLong);
  CHECK_FALSE(rcpt("<a@" + std::string(64, 'b') + ".test>").ok);  // label over 63
}

TEST_CASE("address: split at the last @") {
  auto [local, domain] = split_address("a@b@example.test");
  CHECK(local == "a@b");
  CHECK(domain == "example.test");
  CHECK(split_address("postmaster").second.empty());
}

TEST_CASE("address: envelope_path quotes an envelope address again for a header") {
  CHECK(envelope_path("") == "<>");
  CHECK(envelope_path("user@example.test") == "<user@example.test>");
  CHECK(envelope_path("first.last@example.test") == "<first.last@example.test>");
  CHECK(envelope_path("john doe@example.test") == "<\"john doe\"@example.test>");
  CHECK(envelope_path("a@b@example.test") == "<\"a@b\"@example.test>");
  CHECK(envelope_path("q\"x\\y@example.test") == "<\"q\\\"x\\\\y\"@example.test>");
  CHECK(envelope_path("user@[192.0.2.1]") == "<user@[192.0.2.1]>");
  CHECK(envelope_path("postmaster") == "<postmaster>");
}
