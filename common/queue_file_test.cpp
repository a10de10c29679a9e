// common/queue_file_test.cpp: the entry file's trailer, and reading the parts of real entry files.
#include "common/queue_file.h"

#include <fcntl.h>
#include <sys/stat.h>
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

namespace {

// A queue directory with todo/, tmp/ and pool/, as install.sh makes it.
std::string make_pool_queue(const TempDir& dir) {
  for (const char* sub : {"todo", "tmp", "pool"}) std::filesystem::create_directories(dir.path() / "queue" / sub);
  return (dir.path() / "queue").string();
}

ino_t inode_of(const std::string& path) {
  struct stat st;
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_ino;
}

size_t pool_size(const std::string& q) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(q + "/pool")) ++n;
  return n;
}

}  // namespace

TEST_CASE("queue pool: a retired entry file is taken back, emptied, as the same inode") {
  TempDir dir;
  std::string q = make_pool_queue(dir);
  dir.write("queue/todo/0000000011111111", "an old message that must not survive");
  ino_t ino = inode_of(q + "/todo/0000000011111111");
  REQUIRE(retire_entry_file(q, q + "/todo/0000000011111111", pool_hint("0000000011111111")).is_ok());
  CHECK_FALSE(std::filesystem::exists(q + "/todo/0000000011111111"));
  CHECK(pool_size(q) == 1);

  // A claim tries a few slots from its own hint: one within reach of the retired file's slot.
  CHECK(pool_hint("0000000011111111") == 0x11);
  auto fd = claim_pool_file(q, q + "/tmp/00000000222222aa", 0x10, 0640);
  REQUIRE(fd.has_value());
  CHECK(inode_of(q + "/tmp/00000000222222aa") == ino);
  CHECK(std::filesystem::file_size(q + "/tmp/00000000222222aa") == 0);
  REQUIRE(write_all(fd->get(), "new").is_ok());
  CHECK(pool_size(q) == 0);
  struct stat st;
  REQUIRE(::stat((q + "/tmp/00000000222222aa").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
}

TEST_CASE("queue pool: an empty or missing pool gives nothing; a full one makes retire unlink") {
  TempDir dir;
  std::string q = make_pool_queue(dir);
  CHECK_FALSE(claim_pool_file(q, q + "/tmp/x", 0, 0640).has_value());
  CHECK_FALSE(std::filesystem::exists(q + "/tmp/x"));
  for (unsigned slot = 0; slot < kPoolSlots; ++slot) dir.write("queue/pool/" + std::to_string(slot), "spare");
  dir.write("queue/todo/0000000011111111", "x");
  REQUIRE(retire_entry_file(q, q + "/todo/0000000011111111", 5).is_ok());
  CHECK_FALSE(std::filesystem::exists(q + "/todo/0000000011111111"));
  CHECK(pool_size(q) == kPoolSlots);
  // No pool/ at all (an older install): unlinked; and a name already gone is no error.
  std::filesystem::remove_all(q + "/pool");
  dir.write("queue/todo/0000000033333333", "x");
  REQUIRE(retire_entry_file(q, q + "/todo/0000000033333333", 0).is_ok());
  CHECK_FALSE(std::filesystem::exists(q + "/todo/0000000033333333"));
  CHECK(retire_entry_file(q, q + "/todo/0000000033333333", 0).is_ok());
  CHECK_FALSE(claim_pool_file(q, q + "/tmp/y", 0, 0640).has_value());
}

TEST_CASE("queue pool: a file still read by a deliver-remote is dropped, never refilled") {
  TempDir dir;
  std::string q = make_pool_queue(dir);
  dir.write("queue/pool/3", "the message a deliver-remote is still sending");
  auto reader = open_file(q + "/pool/3", O_RDONLY);
  REQUIRE(reader.has_value());
  REQUIRE(hold_entry_for_reading(reader->get()).is_ok());
  CHECK_FALSE(claim_pool_file(q, q + "/tmp/z", 3, 0640).has_value());
  CHECK_FALSE(std::filesystem::exists(q + "/tmp/z"));  // unlinked: the reader keeps its bytes
  CHECK(pool_size(q) == 0);
  char buf[64] = {};
  CHECK(::pread(reader->get(), buf, sizeof buf - 1, 0) > 0);
  CHECK(std::string(buf) == "the message a deliver-remote is still sending");
}

TEST_CASE("queue pool: anything but a plain file with one link is dropped") {
  TempDir dir;
  std::string q = make_pool_queue(dir);
  dir.write("elsewhere", "not the queue's");
  REQUIRE(::symlink((dir.path() / "elsewhere").c_str(), (q + "/pool/0").c_str()) == 0);
  CHECK_FALSE(claim_pool_file(q, q + "/tmp/a", 0, 0640).has_value());
  dir.write("queue/pool/1", "x");
  REQUIRE(::link((q + "/pool/1").c_str(), (dir.path() / "second-name").c_str()) == 0);
  CHECK_FALSE(claim_pool_file(q, q + "/tmp/b", 1, 0640).has_value());
  std::filesystem::create_directory(q + "/pool/2");
  CHECK_FALSE(claim_pool_file(q, q + "/tmp/c", 2, 0640).has_value());
  CHECK(std::filesystem::file_size(dir.path() / "elsewhere") == 15);  // never written through
  CHECK(std::filesystem::file_size(dir.path() / "second-name") == 1);
}
