// smtpd/data_stream_test.cpp: end of data, dot-unstuffing, RFC 1870 size, smuggling variants.
#include "smtpd/data_stream.h"

#include <catch2/catch.hpp>

using namespace tikimail;

namespace {
struct Decoded {
  std::string message;
  std::string rest;  // what follows the end of data
  bool done;
  uint64_t size;
};

// Feeds `wire` in chunks of `chunk` bytes, as the network might deliver it.
Decoded decode(std::string_view wire, size_t chunk = 1 << 20) {
  DataStream ds;
  Decoded d{"", "", false, 0};
  size_t pos = 0;
  while (pos < wire.size() && !ds.done()) {
    std::string_view piece = wire.substr(pos, chunk);
    pos += ds.feed(piece, &d.message);
  }
  d.rest = std::string(wire.substr(pos));
  d.done = ds.done();
  d.size = ds.size();
  return d;
}
}  // namespace

TEST_CASE("data: CRLF.CRLF ends the data and the rest is the next command") {
  auto d = decode("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n");
  CHECK(d.done);
  CHECK(d.message == "Subject: x\n\nbody\n");
  CHECK(d.rest == "QUIT\r\n");
}

TEST_CASE("data: the same result whatever the chunking") {
  std::string wire = "a\r\n..b\r\n.c\r\n\r\n.\r\nNOOP\r\n";
  auto whole = decode(wire);
  for (size_t chunk : {1, 2, 3, 5, 7}) {
    auto pieces = decode(wire, chunk);
    CHECK(pieces.message == whole.message);
    CHECK(pieces.rest == whole.rest);
    CHECK(pieces.size == whole.size);
  }
  CHECK(whole.message == "a\n.b\nc\n\n");
}

TEST_CASE("data: an empty message is just the dot line") {
  auto d = decode(".\r\n");
  CHECK(d.done);
  CHECK(d.message.empty());
  CHECK(d.size == 0);
}

TEST_CASE("data: size is counted as RFC 1870 does, CRLF form after unstuffing") {
  auto d = decode("abc\r\n..\r\nx\ny\r\n.\r\n");
  // "abc" CRLF (5) + "." CRLF (3) + "x" CRLF (3, a bare LF counts as CRLF) + "y" CRLF (3)
  CHECK(d.size == 14);
  CHECK(d.message == "abc\n.\nx\ny\n");
}

TEST_CASE("data: smuggling variants never end the data early") {
  // Each wire carries a would-be second transaction after a fake terminator.
  const char* fakes[] = {"\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r", "\r\n.\n"};
  for (const char* fake : fakes) {
    std::string wire = std::string("Subject: one\r\n\r\nfirst") + fake +
                       "MAIL FROM:<evil@x.test>\r\nRCPT TO:<v@example.test>\r\nDATA\r\nsecond\r\n.\r\nQUIT\r\n";
    auto d = decode(wire);
    INFO("variant " << std::string_view(fake).size());
    CHECK(d.done);
    CHECK(d.rest == "QUIT\r\n");
    CHECK(d.message.find("MAIL FROM:<evil@x.test>\n") != std::string::npos);  // it is message text
    CHECK(d.message.find('\r') == std::string::npos);                          // no bare CR stored
  }
}

TEST_CASE("data: bare CR and bare LF become line ends in the stored message") {
  auto d = decode("a\rb\nc\r\n.\r\n");
  CHECK(d.message == "a\nb\nc\n");
}

TEST_CASE("data: without the terminator the stream is not done") {
  auto d = decode("line\r\n.\n");
  CHECK_FALSE(d.done);
}
