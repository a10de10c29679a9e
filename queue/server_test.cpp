// queue/server_test.cpp: the queue server's handoff, from both sides: QueueClient in server
// mode ("unix:PATH") against serve_handoff on a real unix socket in a temporary prefix.
#include "queue/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "common/fd.h"
#include "common/queue_file.h"
#include "common/queue_proto.h"
#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::ScopedChdir;
using tikimail::testing::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr const char* kId = "6b12f36b91f214b6";

// A prefix with queue/{tmp,todo,done}, control/databytes and a listening socket at sock.
struct ServerFixture {
  TempDir dir;
  ScopedChdir cd{dir.path()};
  std::string path = (dir.path() / "sock").string();
  Fd listener;
  explicit ServerFixture(const std::string& databytes = "1000") {
    for (const char* sub : {"queue/tmp", "queue/todo", "queue/done"}) fs::create_directories(dir.path() / sub);
    dir.write("control/databytes", databytes + "\n");
    listener = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path.data(), path.size());
    REQUIRE(::bind(listener.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener.get(), 8) == 0);
  }
  // Accepts one connection and serves it, on its own thread; the code it answered lands in *code.
  std::thread serve_one(int* code) {
    return std::thread([this, code] {
      int conn = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
      *code = conn < 0 ? -1 : serve_handoff(conn, Log("queue-test"));
    });
  }
  size_t count(const char* sub) const {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path() / "queue" / sub)) ++n;
    return n;
  }
  bool pending_connection() const {
    pollfd p{listener.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }
};

QueueOutcome hand_over(const std::string& socket, const std::string& message, const Envelope& env) {
  auto client = QueueClient::start({"unix:" + socket}, {std::string("MSGID=") + kId});
  REQUIRE(client);
  client->write(message);
  return client->finish(env, Deadline::after_seconds(10));
}

}  // namespace

TEST_CASE("a handoff stores the message under the client's id and answers 0") {
  ServerFixture f;
  int code = -2;
  std::thread server = f.serve_one(&code);
  const std::string message = "Subject: hi\n\nbody line\n";
  QueueOutcome out = hand_over(f.path, message, Envelope{"a@example.test", {"b@example.test", "c@example.test"}});
  server.join();
  CHECK(out.ok());
  CHECK(out.trouble.empty());
  CHECK(code == 0);
  auto fd = open_file((f.dir.path() / "queue/todo" / kId).string(), O_RDONLY);
  REQUIRE(fd);
  auto layout = read_queue_file_layout(fd->get(), "todo");
  REQUIRE(layout);
  CHECK(layout->message_bytes == message.size());
  CHECK(f.dir.read(std::string("queue/todo/") + kId).substr(0, message.size()) == message);
  CHECK(layout->envelope == std::string("Fa@example.test\0Tb@example.test\0Tc@example.test\0\0", 49));
  CHECK(f.count("tmp") == 0);
}

TEST_CASE("the server's limits answer as the queue program's exit codes do") {
  ServerFixture f("10");  // databytes 10, plus the room the chain may add
  int code = -2;
  std::thread server = f.serve_one(&code);
  QueueOutcome out = hand_over(f.path, std::string(70000, 'x') + "\n", Envelope{"", {"b@example.test"}});
  server.join();
  CHECK(out.exit_code == queue_exit::kRefused);  // 31: too big
  CHECK(out.permanent());
  CHECK(code == queue_exit::kRefused);
  CHECK(f.count("todo") == 0);
  CHECK(f.count("tmp") == 0);
}

TEST_CASE("a request without its two files is refused with 54 and stores nothing") {
  ServerFixture f;
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
  Fd client(pair[0]);
  REQUIRE(::write(client.get(), "6b12f36b91f214b6\n", 17) == 17);
  int code = serve_handoff(pair[1], Log("queue-test"));
  CHECK(code == queue_exit::kReadError);
  unsigned char answer = 0;
  CHECK(::read(client.get(), &answer, 1) == 1);
  CHECK(answer == queue_exit::kReadError);
  CHECK(f.count("todo") == 0);
}

// A stand-in for the queue program in the prefix: it keeps what it was given on fds 0 and 1.
void fake_queue_program(const TempDir& dir) {
  dir.write("bin/queue", "#!/bin/sh\ncat > got.message && cat <&1 > got.envelope\n");
  fs::permissions(dir.path() / "bin/queue", fs::perms::owner_all);
}

TEST_CASE("no server listening: the queue program takes the message, and the client says why") {
  TempDir dir;
  ScopedChdir cd(dir.path());
  fake_queue_program(dir);
  std::string path = (dir.path() / "nothing-here").string();
  QueueOutcome out = hand_over(path, "Subject: x\n\nx\n", Envelope{"", {"b@example.test"}});
  CHECK(out.ok());
  CHECK(out.trouble == "queue server " + path + ": No such file or directory: bin/queue");
  CHECK(dir.read("got.message") == "Subject: x\n\nx\n");
  CHECK(dir.read("got.envelope") == std::string("F\0Tb@example.test\0\0", 19));
}

TEST_CASE("no server and no queue program: a temporary failure that names both") {
  TempDir dir;
  ScopedChdir cd(dir.path());
  std::string path = (dir.path() / "nothing-here").string();
  QueueOutcome out = hand_over(path, "Subject: x\n\nx\n", Envelope{"", {"b@example.test"}});
  CHECK(out.exit_code == queue_exit::kQueueTrouble);
  CHECK_FALSE(out.permanent());
  CHECK(out.trouble.find(path) != std::string::npos);
  CHECK(out.trouble.find("bin/queue") != std::string::npos);
  CHECK(out.describe() == "4.3.0 trouble with the queue directory");
}

TEST_CASE("a message too big to keep in memory goes to the queue program, whole") {
  ServerFixture f;
  fake_queue_program(f.dir);
  std::string message;
  for (int i = 0; message.size() <= kQueueServerMemoryMax + 100000; ++i) message += fmt::format("line {}\n", i);
  auto client = QueueClient::start({"unix:" + f.path}, {std::string("MSGID=") + kId});
  REQUIRE(client);
  for (size_t at = 0; at < message.size(); at += 1000) client->write(std::string_view(message).substr(at, 1000));
  QueueOutcome out = client->finish(Envelope{"a@example.test", {"b@example.test"}}, Deadline::after_seconds(10));
  CHECK(out.ok());
  CHECK(out.trouble == "message over 1048576 bytes: bin/queue");
  CHECK(f.dir.read("got.message") == message);
  CHECK_FALSE(f.pending_connection());  // the server never heard of it
}

TEST_CASE("files other than sealed memfds are refused with 54") {
  ServerFixture f;
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
  Fd client(pair[0]);
  auto a = make_pipe();
  auto b = make_pipe();
  REQUIRE(a);
  REQUIRE(b);
  const int fds[2] = {a->read.get(), b->read.get()};  // pipes whose writers stay open
  REQUIRE(send_with_fds(client.get(), "6b12f36b91f214b6\n", fds, "test"));
  int code = serve_handoff(pair[1], Log("queue-test"));  // at once, not after the read deadline
  CHECK(code == queue_exit::kReadError);
  CHECK(f.count("todo") == 0);
  CHECK(f.count("tmp") == 0);
}

TEST_CASE("a message given up before finish never reaches the server") {
  ServerFixture f;
  {
    auto client = QueueClient::start({"unix:" + f.path}, {std::string("MSGID=") + kId});
    REQUIRE(client);
    client->write("Subject: half\n\n");
    client->abort();
    client->write("more\n");  // ignored after abort, as with a program
  }
  CHECK_FALSE(f.pending_connection());
  CHECK(f.count("todo") == 0);
}

TEST_CASE("a bad server socket path is a permanent configuration error") {
  CHECK_FALSE(QueueClient::start({"unix:"}, {}));
  CHECK_FALSE(QueueClient::start({"unix:" + std::string(200, 'a')}, {}));
}
