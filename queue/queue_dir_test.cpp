// queue/queue_dir_test.cpp: storing into a real queue directory: the files, their modes, the
// exit codes, and that a failure leaves nothing behind.
#include "queue/queue_dir.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "common/fd.h"
#include "common/test_util.h"

using namespace tikimail;
using namespace std::string_literals;
using tikimail::testing::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr const char* kId = "5f0c2a91e3b4c5d6";

// A queue directory laid out as scripts/install.sh does, plus the input files.
struct QueueFixture {
  TempDir dir;
  QueueDir queue{(dir.path() / "queue").string()};
  QueueFixture() {
    for (const char* sub : {"tmp", "todo", "done"}) fs::create_directories(dir.path() / "queue" / sub);
  }
  // An fd reading `bytes` from a regular file outside the queue.
  Fd input(const std::string& name, const std::string& bytes) const {
    dir.write(name, bytes);
    auto fd = open_file((dir.path() / name).string(), O_RDONLY);
    REQUIRE(fd);
    return std::move(*fd);
  }
  StoreOutcome store(const std::string& message, const std::string& envelope, uint64_t max = 1 << 20,
                     const std::string& id = kId) const {
    Fd m = input("in.message", message);
    Fd e = input("in.envelope", envelope);
    return queue.store(m.get(), e.get(), id, max, Deadline::after_seconds(10));
  }
  size_t count(const char* sub) const {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path() / "queue" / sub)) ++n;
    return n;
  }
  bool empty_queue() const { return count("tmp") == 0 && count("todo") == 0; }
  // The layout of the committed entry file, read as deliver and mailq read it.
  QueueFileLayout layout() const {
    auto fd = open_file((dir.path() / "queue/todo" / kId).string(), O_RDONLY);
    REQUIRE(fd);
    auto read = read_queue_file_layout(fd->get(), "todo");
    REQUIRE(read);
    return *read;
  }
};

const std::string kEnvelope = "Fa@x.test\0Tb@y.test\0Tc@z.test\0\0"s;

}  // namespace

TEST_CASE("queue: todo/<id> is exactly the message, the envelope and the trailer; tmp/ is empty") {
  QueueFixture f;
  std::string message = "Subject: hi\n\nbody\r\nbare CR\r and NUL \0 kept\n"s;
  StoreOutcome out = f.store(message, kEnvelope);
  REQUIRE(out.exit_code == 0);
  CHECK(out.bytes == message.size());
  CHECK(out.rcpts == 2);
  CHECK(f.dir.read("queue/todo/"s + kId) == message + kEnvelope + "\nTQ1" + fmt::format("{:016x}", message.size()));
  CHECK(f.count("todo") == 1);
  CHECK(f.count("tmp") == 0);
  QueueFileLayout layout = f.layout();
  CHECK(layout.message_bytes == message.size());
  CHECK(layout.envelope == kEnvelope);
}

TEST_CASE("queue: an empty message, one without a final newline, one ending like a trailer") {
  for (const std::string& message : {""s, "no newline"s, "Subject: x\n\n" + queue_file_trailer(3)}) {
    QueueFixture f;
    REQUIRE(f.store(message, kEnvelope).exit_code == 0);
    CHECK(f.dir.read("queue/todo/"s + kId) == queue_file_contents(message, kEnvelope));
    QueueFileLayout layout = f.layout();
    CHECK(layout.message_bytes == message.size());
    CHECK(layout.envelope == kEnvelope);
  }
}

TEST_CASE("queue: the stored file has mode 0640") {
  QueueFixture f;
  mode_t old = ::umask(027);
  StoreOutcome out = f.store("x\n", kEnvelope);
  ::umask(old);
  REQUIRE(out.exit_code == 0);
  struct stat st;
  REQUIRE(::stat((f.dir.path() / "queue/todo" / kId).c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(st.st_nlink == 1);  // renamed, not linked: tmp/ holds no second name
}

TEST_CASE("queue: a malformed envelope is refused with 91 and leaves nothing") {
  QueueFixture f;
  CHECK(f.store("x\n", "Xa\0Tb\0\0"s).exit_code == queue_exit::kEnvelopeFormat);
  CHECK(f.empty_queue());
  CHECK(f.store("x\n", "Fa\0\0"s).exit_code == queue_exit::kEnvelopeFormat);  // no recipient
  CHECK(f.empty_queue());
  CHECK(f.store("x\n", "Fa\0T\0\0"s).exit_code == queue_exit::kEnvelopeFormat);  // empty recipient
  CHECK(f.empty_queue());
  CHECK(f.store("x\n", "Fa\0Qb\0\0"s).exit_code == queue_exit::kEnvelopeFormat);  // unknown field
  CHECK(f.empty_queue());
}

TEST_CASE("queue: an address longer than 256 bytes is refused with 11") {
  QueueFixture f;
  CHECK(f.store("x\n", "Fa\0T"s + std::string(300, 'b') + "@y.test\0\0"s).exit_code == queue_exit::kAddressTooLong);
  CHECK(f.empty_queue());
}

TEST_CASE("queue: an empty or cut envelope means the caller gave up: 54, nothing committed") {
  QueueFixture f;
  CHECK(f.store("x\n", "").exit_code == queue_exit::kReadError);
  CHECK(f.empty_queue());
  CHECK(f.store("x\n", "Fa@x.test\0Tb@y.test\0"s).exit_code == queue_exit::kReadError);
  CHECK(f.empty_queue());
}

TEST_CASE("queue: a message above the limit is refused with 31 and leaves nothing") {
  QueueFixture f;
  CHECK(f.store(std::string(101, 'x'), kEnvelope, 100).exit_code == queue_exit::kRefused);
  CHECK(f.empty_queue());
  CHECK(f.store(std::string(100, 'x'), kEnvelope, 100).exit_code == 0);  // exactly the limit
}

TEST_CASE("queue: an envelope of one byte over kMaxEnvelope is refused with 31 and leaves nothing") {
  // What queue stores, a reader must take (common/queue_file.h): the limit is exact.
  const size_t rcpts = (kMaxEnvelope - 16) / 10;
  std::string envelope;
  envelope.reserve(kMaxEnvelope + 1);
  for (size_t i = 0; i < rcpts; ++i) envelope += "Tb@y.test\0"s;
  const size_t sender = kMaxEnvelope + 1 - envelope.size() - 3;  // "F" sender "\0" ... "\0"
  envelope = "F" + std::string(sender, 's') + '\0' + envelope + '\0';
  REQUIRE(envelope.size() == kMaxEnvelope + 1);
  QueueFixture f;
  StoreOutcome out = f.store("x\n", envelope);
  CHECK(out.exit_code == queue_exit::kRefused);
  CHECK(out.error == "envelope larger than 8388608 bytes");
  CHECK(f.empty_queue());
}

TEST_CASE("queue: an id already in todo/ or done/ is refused and never overwritten") {
  for (const char* sub : {"todo", "done"}) {
    QueueFixture f;
    f.dir.write("queue/"s + sub + "/" + kId, "older entry");
    StoreOutcome out = f.store("new\n", kEnvelope);
    CHECK(out.exit_code == queue_exit::kQueueTrouble + 3);
    CHECK(f.dir.read("queue/"s + sub + "/" + kId) == "older entry");
    CHECK(f.count("tmp") == 0);
  }
}

TEST_CASE("queue: queue directory trouble gives the 6x codes") {
  QueueFixture f;
  fs::remove(f.dir.path() / "queue" / "tmp");
  CHECK(f.store("x\n", kEnvelope).exit_code == queue_exit::kQueueTrouble + 2);  // 63: tmp/
  QueueDir missing((f.dir.path() / "nowhere").string());
  Fd m = f.input("m", "x\n");
  Fd e = f.input("e", kEnvelope);
  CHECK(missing.store(m.get(), e.get(), kId, 100, Deadline::after_seconds(5)).exit_code == 62);
}

TEST_CASE("queue: a failed rename into todo/ is 64 and takes tmp/<id> back") {
  QueueFixture f;
  fs::remove(f.dir.path() / "queue" / "todo");
  StoreOutcome out = f.store("x\n", kEnvelope);
  CHECK(out.exit_code == queue_exit::kQueueTrouble + 3);  // 64: the rename into todo/
  CHECK(out.error.starts_with("rename to "));
  CHECK(f.count("tmp") == 0);
}

TEST_CASE("queue: no queue/mess/ is needed, and one left by an older layout is not touched") {
  QueueFixture f;
  CHECK_FALSE(fs::exists(f.dir.path() / "queue" / "mess"));
  REQUIRE(f.store("x\n", kEnvelope).exit_code == 0);
  CHECK_FALSE(fs::exists(f.dir.path() / "queue" / "mess"));
  f.dir.write("queue/mess/"s + kId, "an old message");
  fs::remove(f.dir.path() / "queue/todo" / kId);
  REQUIRE(f.store("y\n", kEnvelope).exit_code == 0);
  CHECK(f.dir.read("queue/mess/"s + kId) == "an old message");
}

TEST_CASE("queue: a silent writer runs into the deadline: 52, nothing left") {
  QueueFixture f;
  auto message = make_pipe();
  auto envelope = make_pipe();
  REQUIRE(message);
  REQUIRE(envelope);
  REQUIRE(write_all(message->write.get(), "half a mess").is_ok());
  StoreOutcome out = f.queue.store(message->read.get(), envelope->read.get(), kId, 1000,
                                   Deadline::after(std::chrono::milliseconds(100)));
  CHECK(out.exit_code == queue_exit::kTimeout);
  CHECK(f.empty_queue());
}

TEST_CASE("queue: the envelope is read up to its final NUL and no further") {
  auto pipe = make_pipe();
  REQUIRE(pipe);
  REQUIRE(write_all(pipe->write.get(), "Fa\0Tb\0\0"s).is_ok());
  // The writer keeps its end open: reading must not wait for EOF.
  EnvelopeRead r = read_envelope(pipe->read.get(), Deadline::after_seconds(5));
  CHECK(r.exit_code == 0);
  CHECK(r.envelope.sender == "a");
  CHECK(r.envelope.rcpts == std::vector<std::string>{"b"});
}

TEST_CASE("queue: the null sender round-trips through the store") {
  QueueFixture f;
  REQUIRE(f.store("x\n", "F\0Tb@y.test\0\0"s).exit_code == 0);
  auto decoded = decode_envelope(f.layout().envelope);
  CHECK(decoded.exit_code == 0);
  CHECK(decoded.envelope.sender.empty());
  CHECK(decoded.envelope.rcpts == std::vector<std::string>{"b@y.test"});
}

TEST_CASE("queue: the envelope scanner finds the end across chunks") {
  EnvelopeScanner s;
  std::string bytes;
  for (char c : "Fa@x\0Tb@y\0Tc@z\0\0"s) {
    CHECK(s.scan(bytes) == EnvelopeScanner::State::kIncomplete);
    bytes.push_back(c);
  }
  CHECK(s.scan(bytes) == EnvelopeScanner::State::kComplete);
  CHECK(s.length() == bytes.size());
  EnvelopeScanner bad;
  CHECK(bad.scan("Ta\0"s) == EnvelopeScanner::State::kMalformed);
  EnvelopeScanner bad2;
  CHECK(bad2.scan("Fa\0Xb\0\0"s) == EnvelopeScanner::State::kMalformed);
}

TEST_CASE("queue: MSGID is used only when it is 16 lowercase hex digits") {
  CHECK(choose_message_id("0123456789abcdef") == "0123456789abcdef");
  for (const char* bad : {"0123456789ABCDEF", "../../etc/passwd", "0123456789abcde", "0123456789abcdef0", ""}) {
    std::string id = choose_message_id(bad);
    CHECK(id != bad);
    CHECK(valid_message_id(id));
  }
  CHECK(valid_message_id(choose_message_id(nullptr)));
}

TEST_CASE("queue: wake writes one byte into the trigger fifo and never blocks") {
  QueueFixture f;
  std::string fifo = (f.dir.path() / "queue" / "trigger").string();
  f.queue.wake();  // no fifo at all: nothing happens
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  f.queue.wake();  // no reader: ENXIO, ignored
  auto reader = open_file(fifo, O_RDONLY | O_NONBLOCK);
  REQUIRE(reader);
  f.queue.wake();
  char c = 'x';
  CHECK(::read(reader->get(), &c, 1) == 1);
}
