// queue/inject_test.cpp: sendmail's envelope and header decisions.
#include "queue/inject.h"

#include <sysexits.h>

#include <catch2/catch.hpp>

using namespace tikimail;

namespace {

HeaderAdditions additions() {
  HeaderAdditions add;
  add.uid = 1000;
  add.date = "Mon, 23 Nov 2026 12:34:56 +0900";
  add.message_id = "<5f0c2a91e3b4c5d6@mx.example.test>";
  add.from = "www@mx.example.test";
  return add;
}

using List = std::vector<std::string>;

}  // namespace

TEST_CASE("sendmail: bare recipient names are qualified with control/me") {
  auto r = argument_recipients({"root", "alice@example.test"}, "mx.example.test");
  REQUIRE(r);
  CHECK(*r == List{"root@mx.example.test", "alice@example.test"});
}

TEST_CASE("sendmail: argument recipients may be address lists, duplicates are dropped") {
  auto r = argument_recipients({"Joe <joe@x.test>, ann@y.test", "joe@x.test"}, "me.test");
  REQUIRE(r);
  CHECK(*r == List{"joe@x.test", "ann@y.test"});
}

TEST_CASE("sendmail: an invalid or too long recipient argument is an error") {
  CHECK_FALSE(argument_recipients({"a@-bad-.test"}, "me.test"));
  CHECK_FALSE(argument_recipients({"<>"}, "me.test"));
  auto r = argument_recipients({std::string(65, 'a') + "@x.test"}, "me.test");
  REQUIRE_FALSE(r);
  CHECK(r.error().message().find("too long") != std::string::npos);
}

TEST_CASE("sendmail: quoted local parts reach the envelope unquoted") {
  auto r = envelope_address(ListedAddress{"\"john doe\"", "X.Test"}, "me.test");
  REQUIRE(r);
  CHECK(*r == "john doe@x.test");
}

TEST_CASE("sendmail -t: recipients from To, Cc and Bcc in field order, once each") {
  auto fields = split_fields(
      "From: me@x.test\nTo: Alice <alice@x.test>, team: bob@x.test;\nSubject: to: nobody@x.test\n"
      "Cc: carol@x.test (Carol),\n alice@x.test\nbcc: \"secret agent\"@y.test\n");
  List rcpts{"arg@z.test"};
  REQUIRE(header_recipients(fields, "me.test", &rcpts).is_ok());
  CHECK(rcpts == List{"arg@z.test", "alice@x.test", "bob@x.test", "carol@x.test", "secret agent@y.test"});
}

TEST_CASE("sendmail -t: a malformed address field is an error naming the field") {
  auto fields = split_fields("To: Alice <alice@x.test\n");
  List rcpts;
  Status s = header_recipients(fields, "me.test", &rcpts);
  REQUIRE_FALSE(s);
  CHECK(s.message().starts_with("To field"));
}

TEST_CASE("sendmail: -f takes the null sender, bracketed and bare addresses") {
  CHECK(*envelope_sender("", "me.test") == "");
  CHECK(*envelope_sender("<>", "me.test") == "");
  CHECK(*envelope_sender("<a@x.test>", "me.test") == "a@x.test");
  CHECK(*envelope_sender("a@X.test", "me.test") == "a@x.test");
  CHECK(*envelope_sender("www", "me.test") == "www@me.test");
  CHECK_FALSE(envelope_sender("a@x.test, b@y.test", "me.test"));
  CHECK_FALSE(envelope_sender("a@@x", "me.test"));
}

TEST_CASE("sendmail: the default sender is the login name at control/me") {
  CHECK(default_sender("www-data", 33, "me.test") == "www-data@me.test");
  CHECK(default_sender("", 1234, "me.test") == "uid1234@me.test");
  CHECK(default_sender(std::string(70, 'a'), 5, "me.test") == "uid5@me.test");
}

TEST_CASE("sendmail: a generated From quotes the -F name when it must, and never breaks a line") {
  CHECK(from_value("a@x.test", "") == "a@x.test");
  CHECK(from_value("a@x.test", "Alice Example") == "Alice Example <a@x.test>");
  CHECK(from_value("a@x.test", "Example, Alice") == "\"Example, Alice\" <a@x.test>");
  CHECK(from_value("a@x.test", "Al \"the\" Pal") == "\"Al \\\"the\\\" Pal\" <a@x.test>");
  CHECK(from_value("a@x.test", "Evil\r\nBcc: victim@y.test") == "\"Evil  Bcc: victim@y.test\" <a@x.test>");
  CHECK(from_value("john doe@x.test", "") == "\"john doe\"@x.test");
}

TEST_CASE("sendmail: Received comes first and missing Date, Message-ID, From are added") {
  std::string h = compose_header(split_fields("Subject: hi\n"), false, additions());
  CHECK(h ==
        "Received: (tikimail sendmail invoked by uid 1000); Mon, 23 Nov 2026 12:34:56 +0900\n"
        "Subject: hi\n"
        "Date: Mon, 23 Nov 2026 12:34:56 +0900\n"
        "Message-ID: <5f0c2a91e3b4c5d6@mx.example.test>\n"
        "From: www@mx.example.test\n"
        "\n");
}

TEST_CASE("sendmail: present fields are kept, whatever the case of their names") {
  std::string fields = "from: Me <me@x.test>\nDATE: Tue, 1 Jan 2030 00:00:00 +0000\nmessage-id: <a@b>\n";
  std::string h = compose_header(split_fields(fields), false, additions());
  CHECK(h == "Received: (tikimail sendmail invoked by uid 1000); Mon, 23 Nov 2026 12:34:56 +0900\n" + fields + "\n");
}

TEST_CASE("sendmail -t: Bcc fields are removed from the message, folded lines included") {
  auto fields = split_fields("To: a@x.test\nBcc: hidden@x.test,\n  other@x.test\nbcc: more@x.test\nSubject: s\n");
  std::string h = compose_header(fields, true, additions());
  CHECK(h.find("hidden") == std::string::npos);
  CHECK(h.find("other@") == std::string::npos);
  CHECK(h.find("more@") == std::string::npos);
  CHECK(h.find("To: a@x.test\nSubject: s\n") != std::string::npos);
  // Without -t the message is left as it is.
  CHECK(compose_header(fields, false, additions()).find("Bcc: hidden@x.test,\n  other@x.test\n") != std::string::npos);
}

TEST_CASE("sendmail: the chain's answers map to sysexits codes") {
  auto code = [](int queue_status, std::string reply = "") {
    QueueOutcome o;
    o.exit_code = queue_status;
    o.custom_reply = std::move(reply);
    return sendmail_exit_code(o);
  };
  CHECK(code(0) == EX_OK);
  CHECK(code(11) == EX_DATAERR);
  CHECK(code(31) == EX_UNAVAILABLE);
  CHECK(code(91) == EX_SOFTWARE);
  CHECK(code(82, "D554 5.7.1 virus found") == EX_UNAVAILABLE);
  CHECK(code(82, "Z451 4.3.0 scanner down") == EX_TEMPFAIL);
  for (int temporary : {51, 52, 53, 54, 55, 56, 61, 65, 66, 71, 74, 81})
    CHECK(code(temporary) == EX_TEMPFAIL);
}
