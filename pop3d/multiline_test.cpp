// pop3d/multiline_test.cpp: the RETR and TOP wire form, and that it matches the LIST size.
#include "pop3d/multiline.h"

#include <catch2/catch.hpp>

#include "common/maildir.h"

using namespace tikimail;

namespace {

// The wire form of `file` fed in chunks of `chunk` bytes.
std::string encode(std::string_view file, size_t chunk = 1 << 20, std::optional<uint64_t> top = std::nullopt) {
  MultilineEncoder encoder(top);
  std::string out;
  for (size_t i = 0; i < file.size() && !encoder.done(); i += chunk) encoder.feed(file.substr(i, chunk), out);
  encoder.finish(out);
  return out;
}

// What a client keeps: the lines before the terminator, un-stuffed, with their CRLFs.
std::string unstuff(std::string_view wire) {
  REQUIRE(wire.ends_with(".\r\n"));
  wire.remove_suffix(3);
  std::string out;
  bool line_start = true;
  for (char c : wire) {
    if (line_start && c == '.') {
      line_start = false;
      continue;
    }
    line_start = c == '\n';
    out.push_back(c);
  }
  return out;
}

}  // namespace

TEST_CASE("multiline: LF becomes CRLF, CRLF stays, and the terminator follows") {
  CHECK(encode("a\nb\r\nc\n") == "a\r\nb\r\nc\r\n.\r\n");
  CHECK(encode("") == ".\r\n");
  CHECK(encode("\n\n") == "\r\n\r\n.\r\n");
}

TEST_CASE("multiline: lines that begin with a dot are byte-stuffed") {
  CHECK(encode(".\n..x\nmid.dot\n.") == "..\r\n...x\r\nmid.dot\r\n..\r\n.\r\n");
}

TEST_CASE("multiline: a file without a final newline gets one before the terminator") {
  CHECK(encode("abc") == "abc\r\n.\r\n");
  CHECK(encode("abc\r") == "abc\r\n.\r\n");
}

TEST_CASE("multiline: chunk boundaries anywhere give the same bytes") {
  std::string file = "Subject: x\r\n\r\n.dot\nline\r\n..two\n\nend.";
  std::string whole = encode(file);
  for (size_t chunk = 1; chunk < 8; ++chunk) CHECK(encode(file, chunk) == whole);
}

TEST_CASE("multiline: after un-stuffing a client holds exactly the LIST size") {
  for (std::string file : {"", "a", "a\n", "a\r", ".\n", "x\r\n.\r\n..\nb\rc\n\n", "H: 1\n\nbody\nno end"}) {
    CrlfSize size;
    size.feed(file);
    INFO(file);
    CHECK(unstuff(encode(file, 3)).size() == size.octets());
  }
}

TEST_CASE("multiline: TOP sends the header, the blank line and k body lines") {
  std::string file = "From: a\nSubject: b\n\none\n.two\nthree\n";
  CHECK(encode(file, 1 << 20, 0) == "From: a\r\nSubject: b\r\n\r\n.\r\n");
  CHECK(encode(file, 1 << 20, 2) == "From: a\r\nSubject: b\r\n\r\none\r\n..two\r\n.\r\n");
  CHECK(encode(file, 1 << 20, 10) == encode(file));
  CHECK(encode(file, 2, 1) == "From: a\r\nSubject: b\r\n\r\none\r\n.\r\n");
  // A CRLF blank line ends the header too; a message without one is all header.
  CHECK(encode("A: 1\r\n\r\nb\r\n", 1 << 20, 0) == "A: 1\r\n\r\n.\r\n");
  CHECK(encode("A: 1\nB: 2", 1 << 20, 0) == "A: 1\r\nB: 2\r\n.\r\n");
}
