// deliver/remote_test.cpp: running deliver-remote and the connection slots.
#include "deliver/remote.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "common/test_util.h"

using namespace tikimail;
using namespace std::string_literals;
using tikimail::testing::TempDir;

namespace {

RemoteCall call_with(const TempDir& dir, int fd) {
  (void)dir;
  return RemoteCall{"far.test", "s@x.test", {"a@far.test"}, fd, 15, "6560000012345678"};
}

}  // namespace

TEST_CASE("remote: deliver-remote gets -l with the message length before the domain, and fd 0 at offset 0") {
  TempDir dir;
  // A stand-in for deliver-remote: only shell builtins (the environment holds MSGID only).
  dir.write("fake-remote", "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$0.args\"\nprintf 'K 2.0.0 - l ok\\n'\n");
  std::filesystem::permissions(dir.path() / "fake-remote", std::filesystem::perms::owner_all);
  dir.write("entry", "Subject: x\n\nhi\nFs@x.test\0Ta@far.test\0\0\nTQ1000000000000000f"s);
  auto fd = open_file((dir.path() / "entry").string(), O_RDONLY);
  REQUIRE(fd);
  REQUIRE(::lseek(fd->get(), 9, SEEK_SET) == 9);
  auto r = run_deliver_remote((dir.path() / "fake-remote").string(), call_with(dir, fd->get()),
                              std::chrono::seconds(10));
  REQUIRE(r);
  REQUIRE(r->size() == 1);
  CHECK((*r)[0].kind == RemoteResult::Kind::kDelivered);
  CHECK(dir.read("fake-remote.args") == "-l\n15\nfar.test\ns@x.test\na@far.test\n");
  CHECK(::lseek(fd->get(), 0, SEEK_CUR) == 0);
}

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
