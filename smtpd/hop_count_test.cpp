// smtpd/hop_count_test.cpp: trace fields counted in the header section only, in any pieces.
#include "smtpd/hop_count.h"

#include <catch2/catch.hpp>

using namespace tikimail;

TEST_CASE("hops: Received and Delivered-To lines of the header count, in any case and pieces") {
  std::string message = "Received: a\nreceived: b\n\tcontinued Received: no\nDelivered-To: c\nX-Received: no\n"
                        "Subject: Received: no\n\nReceived: body\n";
  HopCount whole;
  whole.feed(message);
  CHECK(whole.hops() == 3);
  HopCount bytewise;
  for (char c : message) bytewise.feed(std::string_view(&c, 1));
  CHECK(bytewise.hops() == 3);
}

TEST_CASE("hops: more than 100 is a loop") {
  HopCount h;
  for (size_t i = 0; i < kMaxHops; ++i) h.feed("Received: x\n");
  CHECK_FALSE(h.looping());
  h.feed("Delivered-To: y\n");
  CHECK(h.looping());
}
