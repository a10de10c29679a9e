// deliver-remote/message_test.cpp: the DATA form of a queued message and its first pass.
#include "deliver-remote/message.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "common/fd.h"
#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::TempDir;

namespace {

std::string encode(std::initializer_list<std::string_view> blocks, uint64_t* size = nullptr) {
  DataEncoder encoder;
  std::string out;
  for (std::string_view b : blocks) encoder.feed(b, &out);
  encoder.finish(&out);
  if (size != nullptr) *size = encoder.size();
  return out;
}

}  // namespace

TEST_CASE("deliver-remote: message lines become CRLF, dots are stuffed", "[deliver-remote]") {
  uint64_t size = 0;
  CHECK(encode({"a\nb\n"}, &size) == "a\r\nb\r\n.\r\n");
  CHECK(size == 6);
  CHECK(encode({"a\r\nb\r\n"}) == "a\r\nb\r\n.\r\n");
  CHECK(encode({"lone\rcr\n"}) == "lone\r\ncr\r\n.\r\n");
  CHECK(encode({"end\r"}) == "end\r\n.\r\n");
  CHECK(encode({"no newline"}, &size) == "no newline\r\n.\r\n");
  CHECK(size == 12);
  CHECK(encode({""}, &size) == ".\r\n");
  CHECK(size == 0);
  CHECK(encode({".\n..x\n a.b\n"}, &size) == "..\r\n...x\r\n a.b\r\n.\r\n");
  CHECK(size == 14);  // the stuffed dots are not counted (RFC 1870)
}

TEST_CASE("deliver-remote: a CRLF or a dot split across blocks", "[deliver-remote]") {
  CHECK(encode({"a\r", "\nb\n"}) == "a\r\nb\r\n.\r\n");
  CHECK(encode({"a\n", ".b\n"}) == "a\r\n..b\r\n.\r\n");
  CHECK(encode({"a\r", ".b"}) == "a\r\n..b\r\n.\r\n");
}

TEST_CASE("deliver-remote: no line on the wire is longer than 998 octets", "[deliver-remote]") {
  // RFC 5321 4.5.3.1.6: at most 1000 octets with the CRLF.
  uint64_t size = 0;
  std::string exact(998, 'x');
  CHECK(encode({exact + "\n"}, &size) == exact + "\r\n.\r\n");
  CHECK(size == 1000);
  CHECK(encode({exact + "y\n"}, &size) == exact + "\r\n y\r\n.\r\n");
  CHECK(size == 1004);  // the inserted CRLF and space are sent, so SIZE counts them
  // A stuffed dot is part of the line as sent.
  CHECK(encode({"." + std::string(996, 'x') + "\n"}) == ".." + std::string(996, 'x') + "\r\n.\r\n");
  CHECK(encode({"." + std::string(997, 'x') + "\n"}) == ".." + std::string(996, 'x') + "\r\n x\r\n.\r\n");
  // A dot right after the break is not at a line start: the space is.
  CHECK(encode({exact + ".x\n"}) == exact + "\r\n .x\r\n.\r\n");
  // A line of 100 000 bytes split over blocks, then a dot line.
  std::string big(100000, 'b');
  std::string out = encode({big.substr(0, 65536), big.substr(65536) + "\n.dot\n"}, &size);
  size_t longest = 0, start = 0;
  for (size_t crlf; (crlf = out.find("\r\n", start)) != std::string::npos; start = crlf + 2)
    longest = std::max(longest, crlf - start);
  CHECK(longest == 998);
  CHECK(out.find("\r\n ", 0) == 998);
  CHECK(out.ends_with("\r\n..dot\r\n.\r\n"));
  CHECK(out.find('\n') == out.find("\r\n") + 1);
  CHECK(size == out.size() - 3 - 1);  // without ".\r\n" and the stuffed dot
}

TEST_CASE("deliver-remote: the first pass measures the message's bytes only, whatever the fd's offset",
          "[deliver-remote]") {
  TempDir dir;
  std::string big;
  for (int i = 0; i < 20000; ++i) big += ".line of text\n";  // several blocks
  const std::string message = big + "caf\xc3\xa9\n";
  dir.write("m", message + "8-bit \xff and lines\n\n\n after the message");
  Fd fd(::open((dir.path() / "m").c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(::lseek(fd.get(), 5, SEEK_SET) == 5);
  auto info = scan_message(fd.get(), message.size());
  REQUIRE(info);
  CHECK(info->crlf_size == 20000 * 15 + 7);
  CHECK(info->eight_bit);
  CHECK(::lseek(fd.get(), 0, SEEK_CUR) == 5);

  dir.write("plain", "ascii only\n\xff\xff after it");
  Fd plain(::open((dir.path() / "plain").c_str(), O_RDONLY | O_CLOEXEC));
  auto p = scan_message(plain.get(), 11);
  REQUIRE(p);
  CHECK_FALSE(p->eight_bit);
  CHECK(p->crlf_size == 12);
  auto none = scan_message(plain.get(), 0);
  REQUIRE(none);
  CHECK(none->crlf_size == 0);
}

TEST_CASE("deliver-remote: a file shorter than the stated length is a temporary error", "[deliver-remote]") {
  TempDir dir;
  dir.write("m", "short\n");
  Fd fd(::open((dir.path() / "m").c_str(), O_RDONLY | O_CLOEXEC));
  auto info = scan_message(fd.get(), 7);
  REQUIRE_FALSE(info);
  CHECK(info.error().temporary_failure());
  CHECK(info.error().message() == "read message: it ends after 6 of 7 bytes");
  std::string block;
  auto n = read_message_block(fd.get(), 100000, 0, &block);
  REQUIRE(n);
  CHECK(*n == 6);
  CHECK_FALSE(read_message_block(fd.get(), 100000, 6, &block));
  auto end = read_message_block(fd.get(), 6, 6, &block);
  REQUIRE(end);
  CHECK(*end == 0);
  CHECK_FALSE(scan_message(-1, 1));
}
