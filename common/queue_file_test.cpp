// common/queue_file_test.cpp: the entry file's trailer, and reading the parts of real entry files.
#include "common/queue_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/test_util.h"

using namespace tikimail;
using namespace std::string_literals;
using tikimail::testing::TempDir;

namespace {

const std::string kEnvelope = "Fa@x.test\0Tb@y.test\0\0"s;

// The layout of a file holding `content`, read through a fresh read-only fd.
Result<QueueFileLayout> layout_of(const std::string& content) {
  TempDir dir;
  dir.write("entry", content);
  auto fd = open_file((dir.path() / "entry").string(), O_RDONLY);
  REQUIRE(fd);
  return read_queue_file_layout(fd->get(), "entry");
}

}  // namespace

TEST_CASE("queue file: the trailer is \\nTQ1 and 16 lowercase hex digits of the message length") {
  CHECK(queue_file_trailer(0) == "\nTQ10000000000000000");
  CHECK(queue_file_trailer(0x1a2b) == "\nTQ10000000000001a2b");
  CHECK(queue_file_trailer(UINT64_MAX) == "\nTQ1ffffffffffffffff");
  CHECK(queue_file_trailer(12345).size() == kQueueFileTrailer);
  CHECK(queue_file_contents("hi\n", kEnvelope) == "hi\n" + kEnvelope + "\nTQ10000000000000003");
}

TEST_CASE("queue file: message, envelope and trailer round-trip through a real file") {
  for (const std::string& message : {"Subject: x\n\nbody\n"s, ""s, "no newline at the end"s,
                                     "ends like a trailer\nTQ10000000000000005"s, "NUL \0 and CR \r kept\n"s}) {
    auto layout = layout_of(queue_file_contents(message, kEnvelope));
    REQUIRE(layout);
    CHECK(layout->message_bytes == message.size());
    CHECK(layout->envelope == kEnvelope);
  }
}

TEST_CASE("queue file: the fd's offset is neither used nor moved") {
  TempDir dir;
  dir.write("entry", queue_file_contents("message\n", kEnvelope));
  auto fd = open_file((dir.path() / "entry").string(), O_RDONLY);
  REQUIRE(fd);
  REQUIRE(::lseek(fd->get(), 3, SEEK_SET) == 3);
  auto layout = read_queue_file_layout(fd->get(), "entry");
  REQUIRE(layout);
  CHECK(layout->message_bytes == 8);
  CHECK(::lseek(fd->get(), 0, SEEK_CUR) == 3);
}

TEST_CASE("queue file: a file shorter than the trailer is not an entry") {
  for (const std::string& content : {""s, "x"s, queue_file_trailer(0).substr(1) /* 19 bytes */}) {
    auto layout = layout_of(content);
    REQUIRE_FALSE(layout);
    CHECK(layout.error().permanent_failure());
    CHECK(layout.error().message().find("shorter than the trailer") != std::string::npos);
  }
  CHECK_FALSE(parse_queue_file_trailer("short", 5));
}

TEST_CASE("queue file: a wrong magic is not an entry") {
  // The envelope file of the older layout: no trailer at all.
  std::vector<std::string> contents = {kEnvelope};
  REQUIRE(kEnvelope.size() >= kQueueFileTrailer);
  for (size_t at : {0, 1, 2, 3}) {  // each byte of the magic
    std::string trailer = queue_file_trailer(1);
    trailer[at] = 'X';
    contents.push_back("x" + kEnvelope + trailer);
  }
  for (const std::string& content : contents) {
    auto layout = layout_of(content);
    REQUIRE_FALSE(layout);
    CHECK(layout.error().permanent_failure());
    CHECK(layout.error().message().find("no trailer") != std::string::npos);
  }
}

TEST_CASE("queue file: the length must be 16 lowercase hex digits") {
  const uint64_t size = 100;
  const std::string good = queue_file_trailer(10);
  CHECK(good == "\nTQ1000000000000000a");
  CHECK(*parse_queue_file_trailer(good, size) == 10);
  // Position 19 is the last digit, 4 the first.
  for (auto [at, c] : std::vector<std::pair<size_t, char>>{{19, 'A'}, {18, ' '}, {4, '-'}, {19, 'g'}, {19, '\n'},
                                                           {5, 'x'}, {10, '\0'}}) {
    std::string bad = good;
    bad[at] = c;
    auto length = parse_queue_file_trailer(bad, size);
    REQUIRE_FALSE(length);
    CHECK(length.error().message().find("16 lowercase hex digits") != std::string::npos);
  }
}

TEST_CASE("queue file: a message length larger than the file allows is refused") {
  // 20 bytes of trailer leave 0 for the message in a 20-byte file.
  CHECK(*parse_queue_file_trailer(queue_file_trailer(0), 20) == 0);
  CHECK_FALSE(parse_queue_file_trailer(queue_file_trailer(1), 20));
  CHECK(*parse_queue_file_trailer(queue_file_trailer(80), 100) == 80);
  CHECK_FALSE(parse_queue_file_trailer(queue_file_trailer(81), 100));
  CHECK_FALSE(parse_queue_file_trailer(queue_file_trailer(UINT64_MAX), 100));  // no overflow
  auto layout = layout_of("short message" + kEnvelope + queue_file_trailer(1000));
  REQUIRE_FALSE(layout);
  CHECK(layout.error().message().find("a message of 1000 bytes in a file of") != std::string::npos);
}

TEST_CASE("queue file: an envelope part over kMaxEnvelope is refused without reading it") {
  TempDir dir;
  const std::string message = "m\n";
  auto sparse = [&](uint64_t envelope_bytes) {
    std::string path = (dir.path() / "entry").string();
    ::unlink(path.c_str());
    auto fd = open_file(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    REQUIRE(fd);
    REQUIRE(write_all(fd->get(), message));
    std::string trailer = queue_file_trailer(message.size());
    off_t at = static_cast<off_t>(message.size() + envelope_bytes);
    REQUIRE(::pwrite(fd->get(), trailer.data(), trailer.size(), at) == static_cast<ssize_t>(trailer.size()));
    return read_queue_file_layout(fd->get(), "entry");
  };
  auto over = sparse(kMaxEnvelope + 1);
  REQUIRE_FALSE(over);
  CHECK(over.error().permanent_failure());
  CHECK(over.error().message().find("more than 8388608") != std::string::npos);
  auto exact = sparse(kMaxEnvelope);
  REQUIRE(exact);
  CHECK(exact->message_bytes == 2);
  CHECK(exact->envelope.size() == kMaxEnvelope);
}

TEST_CASE("queue file: what is not a regular file or cannot be read is an error") {
  TempDir dir;
  auto directory = open_file(dir.path().string(), O_RDONLY | O_DIRECTORY);
  REQUIRE(directory);
  CHECK_FALSE(read_queue_file_layout(directory->get(), "dir"));
  auto closed = read_queue_file_layout(-1, "nothing");
  REQUIRE_FALSE(closed);
  CHECK(closed.error().temporary_failure());
}
