// common/control_test.cpp: control files, the queue protocol codec, and recipients lookup.
#include "common/control.h"

#include <catch2/catch.hpp>

#include "common/queue_proto.h"
#include "common/recipients.h"
#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::TempDir;

TEST_CASE("control: a missing file gives the documented default") {
  TempDir dir;
  CHECK(*read_control_uint(dir.path() / "databytes", 20971520) == 20971520);
  CHECK(*read_control_string(dir.path() / "me", "fallback") == "fallback");
  CHECK(read_control_lines(dir.path() / "rcpthosts")->empty());
}

TEST_CASE("control: comments, blanks and spaces are ignored") {
  TempDir dir;
  dir.write("rcpthosts", "# our domains\n\n  example.test  # main\r\nexample.org\n");
  auto lines = read_control_lines(dir.path() / "rcpthosts");
  REQUIRE(lines);
  CHECK(*lines == std::vector<std::string>{"example.test", "example.org"});
}

TEST_CASE("control: a malformed number is an error, not the default") {
  TempDir dir;
  dir.write("databytes", "20M\n");
  CHECK_FALSE(read_control_uint(dir.path() / "databytes", 1));
}

TEST_CASE("queue protocol: envelopes round-trip") {
  Envelope env{"a@x.test", {"b@y.test", "c@z.test"}};
  std::string bytes = encode_envelope(env);
  CHECK(bytes == std::string("Fa@x.test\0Tb@y.test\0Tc@z.test\0\0", 31));
  auto decoded = decode_envelope(bytes);
  CHECK(decoded.exit_code == 0);
  CHECK(decoded.envelope.sender == "a@x.test");
  CHECK(decoded.envelope.rcpts == env.rcpts);
}

TEST_CASE("queue protocol: a mark travels in the sender field and cannot be forged") {
  using namespace std::string_literals;
  Envelope env{"", {"a@x.test"}, std::string(envelope_mark::kBounce)};
  std::string bytes = encode_envelope(env);
  CHECK(bytes == "F\x01" "bounce\x01\0Ta@x.test\0\0"s);
  auto decoded = decode_envelope(bytes);
  REQUIRE(decoded.exit_code == 0);
  CHECK(decoded.envelope.mark == "bounce");
  CHECK(decoded.envelope.sender.empty());
  auto with_sender = decode_envelope("F\x01" "delay\x01postmaster@x.test\0Ta\0\0"s);
  CHECK(with_sender.envelope.mark == "delay");
  CHECK(with_sender.envelope.sender == "postmaster@x.test");
  CHECK(decode_envelope("Fa\0Tb\0\0"s).envelope.mark.empty());
  // \x01 anywhere else, an empty, unterminated or non-letter mark: format errors.
  for (std::string bad : {"Fa\x01" "b\0Tb\0\0"s, "F\x01\x01" "a\0Tb\0\0"s, "F\x01" "bounce\0Tb\0\0"s,
                          "F\x01" "Bounce\x01\0Tb\0\0"s, "F\x01" "a\x01" "b\x01\0Tb\0\0"s})
    CHECK(decode_envelope(bad).exit_code == queue_exit::kEnvelopeFormat);
}

TEST_CASE("queue protocol: malformed envelopes are format errors (91)") {
  using namespace std::string_literals;
  CHECK(decode_envelope(""s).exit_code == queue_exit::kEnvelopeFormat);
  CHECK(decode_envelope("Fa\0\0"s).exit_code == queue_exit::kEnvelopeFormat);       // no recipient
  CHECK(decode_envelope("Fa\0Tb\0"s).exit_code == queue_exit::kEnvelopeFormat);     // truncated
  CHECK(decode_envelope("Fa\0Tb\0\0x"s).exit_code == queue_exit::kEnvelopeFormat);  // trailing bytes
  CHECK(decode_envelope("Fa\0T\0\0"s).exit_code == queue_exit::kEnvelopeFormat);    // empty recipient
  CHECK(decode_envelope("F" + std::string(300, 'a') + "\0Tb\0\0"s).exit_code == queue_exit::kAddressTooLong);
}

TEST_CASE("queue protocol: message ids are 16 lowercase hex digits") {
  std::string id = new_message_id();
  CHECK(valid_message_id(id));
  CHECK_FALSE(valid_message_id("../../etc/passwd"));
  CHECK_FALSE(valid_message_id("0123456789ABCDEF"));
  CHECK_FALSE(valid_message_id("0123456789abcde"));
}

TEST_CASE("queue protocol: exit codes map to temporary and permanent answers") {
  QueueOutcome o;
  o.exit_code = queue_exit::kWriteError;
  CHECK_FALSE(o.permanent());
  CHECK(o.describe().starts_with("4.3.0"));
  o.exit_code = queue_exit::kRefused;
  CHECK(o.permanent());
  o.exit_code = queue_exit::kCustomReply;
  o.custom_reply = "Z423 sorry, that message exceeds my limit";
  CHECK_FALSE(o.permanent());
  CHECK(o.describe() == "423 sorry, that message exceeds my limit");
}

TEST_CASE("recipients: binary search over the sorted list, case-insensitive") {
  TempDir dir;
  dir.write("recipients", "alice@example.test\nbob@example.test\ncarol@example.org\n");
  auto r = Recipients::load((dir.path() / "recipients").string());
  REQUIRE(r);
  CHECK(r->size() == 3);
  CHECK(r->contains("alice@example.test"));
  CHECK(r->contains("BOB@Example.Test"));
  CHECK(r->contains("carol@example.org"));
  CHECK_FALSE(r->contains("dave@example.test"));
  CHECK_FALSE(r->contains("alice@example.tes"));
  auto missing = Recipients::load((dir.path() / "none").string());
  REQUIRE(missing);
  CHECK_FALSE(missing->contains("alice@example.test"));
}

TEST_CASE("rcpthosts: exact domains and leading-dot suffix rules") {
  auto d = DomainList::from_lines({"example.test", ".example.org"});
  CHECK(d.contains("example.test"));
  CHECK(d.contains("EXAMPLE.TEST"));
  CHECK_FALSE(d.contains("sub.example.test"));
  CHECK(d.contains("mail.example.org"));
  CHECK_FALSE(d.contains("example.org"));
  CHECK_FALSE(d.contains("badexample.org"));
}
