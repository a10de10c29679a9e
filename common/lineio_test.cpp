// common/lineio_test.cpp: line limits, bare LF, deadlines, and pipelined input.
#include "common/lineio.h"

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "common/fd.h"

using namespace tikimail;

namespace {
struct SocketPair {
  Fd a, b;
  SocketPair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    a = Fd(fds[0]);
    b = Fd(fds[1]);
  }
};
Deadline soon() { return Deadline::after(std::chrono::milliseconds(2000)); }
}  // namespace

TEST_CASE("lineio: CRLF and bare LF lines are told apart") {
  SocketPair sp;
  REQUIRE(write_all(sp.b.get(), "EHLO x\r\nNOOP\n"));
  LineReader in(sp.a.get());
  Line first = in.read_line(soon(), 512);
  CHECK(first.code == IoCode::kOk);
  CHECK(first.text == "EHLO x");
  CHECK(first.crlf);
  Line second = in.read_line(soon(), 512);
  CHECK(second.text == "NOOP");
  CHECK_FALSE(second.crlf);
}

TEST_CASE("lineio: a line of exactly the limit passes, one byte more is too long") {
  SocketPair sp;
  std::string ok(510, 'a'), too_long(511, 'b');
  REQUIRE(write_all(sp.b.get(), ok + "\r\n" + too_long + "\r\nNEXT\r\n"));
  LineReader in(sp.a.get());
  CHECK(in.read_line(soon(), 512).text.size() == 510);
  CHECK(in.read_line(soon(), 512).code == IoCode::kTooLong);
  CHECK(in.read_line(soon(), 512).text == "NEXT");  // the reader is back in step
}

TEST_CASE("lineio: an endless line is discarded in bounded memory") {
  SocketPair sp;
  LineReader in(sp.a.get(), 1024);
  std::string junk(100000, 'x');
  std::thread writer([&] { (void)write_all(sp.b.get(), junk + "\r\nQUIT\r\n"); });
  CHECK(in.read_line(soon(), 512).code == IoCode::kTooLong);
  CHECK(in.read_line(soon(), 512).text == "QUIT");
  writer.join();
}

TEST_CASE("lineio: a silent peer hits the deadline") {
  SocketPair sp;
  LineReader in(sp.a.get());
  Line line = in.read_line(Deadline::after(std::chrono::milliseconds(50)), 512);
  CHECK(line.code == IoCode::kTimeout);
}

TEST_CASE("lineio: EOF is reported, and pending() shows pipelined input") {
  SocketPair sp;
  REQUIRE(write_all(sp.b.get(), "A\r\nB\r\n"));
  sp.b = Fd();
  LineReader in(sp.a.get());
  CHECK(in.read_line(soon(), 512).text == "A");
  CHECK(in.pending() == 3);
  CHECK(in.read_line(soon(), 512).text == "B");
  CHECK(in.read_line(soon(), 512).code == IoCode::kEof);
}

TEST_CASE("lineio: linger_close sends our end first and reads the peer's leftovers away") {
  SocketPair sp;
  REQUIRE(write_all(sp.b.get(), "unread pipelined input\r\n"));
  std::thread peer([&] {
    char buf[64];
    while (::read(sp.b.get(), buf, sizeof buf) > 0) {
    }  // sees our FIN (EOF) at once
    ::shutdown(sp.b.get(), SHUT_WR);
  });
  auto start = std::chrono::steady_clock::now();
  linger_close(sp.a.get(), sp.a.get(), Deadline::after(std::chrono::milliseconds(5000)));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(4000));  // the peer's FIN ended it
  peer.join();
}
