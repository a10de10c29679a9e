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

TEST_CASE("deliver-remote: the first pass measures and seeks back", "[deliver-remote]") {
  TempDir dir;
  std::string big;
  for (int i = 0; i < 20000; ++i) big += ".line of text\n";  // several blocks
  dir.write("m", big + "caf\xc3\xa9\n");
  Fd fd(::open((dir.path() / "m").c_str(), O_RDONLY | O_CLOEXEC));
  auto info = scan_message(fd.get());
  REQUIRE(info);
  CHECK(info->crlf_size == 20000 * 15 + 7);
  CHECK(info->eight_bit);
  CHECK(::lseek(fd.get(), 0, SEEK_CUR) == 0);

  dir.write("plain", "ascii only\n");
  Fd plain(::open((dir.path() / "plain").c_str(), O_RDONLY | O_CLOEXEC));
  auto p = scan_message(plain.get());
  REQUIRE(p);
  CHECK_FALSE(p->eight_bit);
  CHECK(p->crlf_size == 12);
}
