// deliver/remote_test.cpp: running deliver-remote and the connection slots.
#include "deliver/remote.h"

#include <fcntl.h>

#include <catch2/catch.hpp>

#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::TempDir;

namespace {

RemoteCall call_with(const TempDir& dir, int fd) {
  (void)dir;
  return RemoteCall{"far.test", "s@x.test", {"a@far.test"}, fd, "6560000012345678"};
}

}  // namespace

TEST_CASE("remote: a program that cannot be run is a temporary failure that says so") {
  TempDir dir;
  dir.write("mess", "Subject: x\n\nhi\n");
  auto fd = open_file((dir.path() / "mess").string(), O_RDONLY);
  REQUIRE(fd);
  auto r = run_deliver_remote((dir.path() / "no-such-program").string(), call_with(dir, fd->get()),
                              std::chrono::seconds(10));
  REQUIRE_FALSE(r);
  CHECK(r.error().temporary_failure());
  CHECK(r.error().message().find("cannot run") != std::string::npos);
}

TEST_CASE("remote: a program that answers nothing is a temporary failure") {
  TempDir dir;
  dir.write("mess", "Subject: x\n\nhi\n");
  auto fd = open_file((dir.path() / "mess").string(), O_RDONLY);
  REQUIRE(fd);
  auto r = run_deliver_remote("/bin/true", call_with(dir, fd->get()), std::chrono::seconds(10));
  REQUIRE_FALSE(r);
  CHECK(r.error().message().find("0 result lines for 1 recipients") != std::string::npos);
  auto failed = run_deliver_remote("/bin/false", call_with(dir, fd->get()), std::chrono::seconds(10));
  REQUIRE_FALSE(failed);
  CHECK(failed.error().message() == "deliver-remote exited 1");
}

TEST_CASE("remote: slots limit connections globally and per domain, and free on release") {
  TempDir dir;
  std::string path = (dir.path() / "remote").string();
  auto a = RemoteSlots::open(path);
  auto b = RemoteSlots::open(path);
  auto c = RemoteSlots::open(path);
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(c);
  // Per domain: one connection to far.test; another domain is free.
  CHECK(a->acquire("far.test", 2, 1));
  CHECK_FALSE(b->acquire("far.test", 2, 1));
  CHECK(b->acquire("near.test", 2, 1));
  // Globally: two in all.
  CHECK_FALSE(c->acquire("other.test", 2, 5));
  a->release();
  CHECK(c->acquire("other.test", 2, 5));
  CHECK(a->acquire("far.test", 3, 1));
}
