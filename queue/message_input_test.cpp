// queue/message_input_test.cpp: line ends, the dot line and the RFC 1870 size of sendmail's input.
#include "queue/message_input.h"

#include <catch2/catch.hpp>

using namespace tikimail;

namespace {

struct Read {
  std::string text;
  uint64_t size;
  bool ended;
};

// Feeds `input` in chunks of `chunk` bytes, then EOF.
Read read_all(std::string_view input, bool dot_ends, size_t chunk = 1 << 20) {
  MessageInput in(dot_ends);
  std::string out;
  for (size_t i = 0; i < input.size(); i += chunk) in.feed(input.substr(i, chunk), &out);
  in.finish(&out);
  return {out, in.size(), in.ended()};
}

}  // namespace

TEST_CASE("sendmail input: CRLF becomes LF, bare CR is kept, a last line gets its LF") {
  CHECK(read_all("a\r\nb\nc\rd\r\ne", true).text == "a\nb\nc\rd\ne\n");
}

TEST_CASE("sendmail input: a lone dot line ends the input without -i") {
  auto r = read_all("Subject: x\n\nbody\n.\nafter\n", true);
  CHECK(r.text == "Subject: x\n\nbody\n");
  CHECK(r.ended);
  CHECK(read_all("body\r\n.\r\nafter\r\n", true).text == "body\n");
  CHECK(read_all("body\n.", true).text == "body\n");  // at EOF too
}

TEST_CASE("sendmail input: with -i a lone dot is text") {
  auto r = read_all("body\n.\nafter\n", false);
  CHECK(r.text == "body\n.\nafter\n");
  CHECK_FALSE(r.ended);
}

TEST_CASE("sendmail input: lines that start with a dot are kept as they are") {
  CHECK(read_all(".x\n..\n. \n.\r\r\n", true).text == ".x\n..\n. \n.\r\n");
}

TEST_CASE("sendmail input: chunk boundaries anywhere give the same result") {
  std::string input = "A: b\r\n\r\nline\r\n.leading\r\n\r\n.\r\ntrailing\r\n";
  Read whole = read_all(input, true);
  for (size_t chunk = 1; chunk < 8; ++chunk) {
    Read r = read_all(input, true, chunk);
    CHECK(r.text == whole.text);
    CHECK(r.size == whole.size);
  }
}

TEST_CASE("sendmail input: the size counts each line plus 2, as RFC 1870 does") {
  CHECK(read_all("ab\ncd\r\n", true).size == 8);
  CHECK(read_all("ab", true).size == 4);       // the last line gets its line end
  CHECK(read_all("\n\n", true).size == 4);
  CHECK(read_all("ab\n.\n", true).size == 4);  // the dot line is not part of the message
  CHECK(read_all("", true).size == 0);
}

TEST_CASE("sendmail input: the size of a line still being read counts already") {
  MessageInput in(true);
  std::string out;
  in.feed("abc", &out);
  CHECK(in.size() == 5);
}

TEST_CASE("sendmail input: a line longer than 1 MB is fine") {
  std::string line(3 << 20, 'x');
  Read r = read_all(line + "\r\n", true, 65536);
  CHECK(r.text.size() == line.size() + 1);
  CHECK(r.size == line.size() + 2);
}
