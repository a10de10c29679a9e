// pop3d/apop_test.cpp: the APOP digest against RFC 1939's own example.
#include "pop3d/apop.h"

#include <catch2/catch.hpp>

using namespace tikimail;

namespace {
constexpr std::string_view kTimestamp = "<1896.697170952@dbc.mtview.ca.us>";  // RFC 1939 section 7
constexpr std::string_view kDigest = "c4c9334bac560ecc979e58001b3e22fb";
}  // namespace

TEST_CASE("apop: the RFC 1939 example vector") {
  auto digest = apop_digest(kTimestamp, "tanstaaf");
  REQUIRE(digest);
  CHECK(*digest == kDigest);
  CHECK(*apop_matches(kTimestamp, "tanstaaf", kDigest));
  CHECK(*apop_matches(kTimestamp, "tanstaaf", "C4C9334BAC560ECC979E58001B3E22FB"));  // hex in either case
}

TEST_CASE("apop: a wrong secret, another timestamp or a malformed digest does not match") {
  CHECK_FALSE(*apop_matches(kTimestamp, "tanstaaF", kDigest));
  CHECK_FALSE(*apop_matches("<1896.697170953@dbc.mtview.ca.us>", "tanstaaf", kDigest));
  CHECK_FALSE(*apop_matches(kTimestamp, "tanstaaf", kDigest.substr(1)));
  CHECK_FALSE(*apop_matches(kTimestamp, "tanstaaf", "g4c9334bac560ecc979e58001b3e22fb"));
  CHECK_FALSE(*apop_matches(kTimestamp, "tanstaaf", ""));
}

TEST_CASE("apop: the greeting timestamp is <pid.time@host>") {
  CHECK(apop_timestamp(1896, 697170952, "dbc.mtview.ca.us") == kTimestamp);
  CHECK(valid_apop_digest(kDigest));
  CHECK_FALSE(valid_apop_digest("c4c9334bac560ecc979e58001b3e22f"));
  CHECK_FALSE(valid_apop_digest("c4c9334bac560ecc979e58001b3e22fbb"));
}
