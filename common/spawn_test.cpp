// common/spawn_test.cpp: fd placements (including crossed ones), the environment, signal
// dispositions, and a program that cannot run.
#include "common/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>

#include "common/fd.h"
#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::read_all;

namespace {

int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("spawn: places fds, even when a source is another placement's target") {
  auto a = make_pipe();
  auto b = make_pipe();
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  // Put a's write end on 5 and b's on 6, then crossed: whichever numbers the pipes got, the
  // child must see "A" arrive through a and "B" through b.
  int wa = a->write.get(), wb = b->write.get();
  const FdPlacement fds[] = {{wa, wb}, {wb, wa}};
  std::string script = "printf A >&" + std::to_string(wb) + "; printf B >&" + std::to_string(wa);
  auto pid = spawn({"/bin/sh", "-c", script}, environment_with({}), fds);
  REQUIRE(pid.has_value());
  (void)a->write.close();
  (void)b->write.close();
  CHECK(read_all(a->read.get()) == "A");
  CHECK(read_all(b->read.get()) == "B");
  CHECK(wait_exit(*pid) == 0);
}

TEST_CASE("spawn: the child sees only the placed fds, with the environment given") {
  auto out = make_pipe();
  REQUIRE(out.has_value());
  auto extra = open_file("/dev/null", O_RDONLY);  // close-on-exec: must not reach the child
  REQUIRE(extra.has_value());
  ::setenv("TIKI_SPAWN_KEEP", "kept", 1);
  ::setenv("TIKI_SPAWN_DROP", "dropped", 1);
  const FdPlacement fds[] = {{out->write.get(), 1}};
  std::string script = "echo \"$TIKI_SPAWN_KEEP/${TIKI_SPAWN_DROP-unset}/$TIKI_SPAWN_NEW\"; "
                       "[ -e /proc/self/fd/" + std::to_string(extra->get()) + " ] && echo leaked; exit 3";
  auto pid = spawn({"/bin/sh", "-c", script}, environment_with({"TIKI_SPAWN_NEW=new"}, {"TIKI_SPAWN_DROP"}), fds);
  ::unsetenv("TIKI_SPAWN_KEEP");
  ::unsetenv("TIKI_SPAWN_DROP");
  REQUIRE(pid.has_value());
  (void)out->write.close();
  CHECK(read_all(out->read.get()) == "kept/unset/new\n");
  CHECK(wait_exit(*pid) == 3);
}

TEST_CASE("spawn: signals start at their defaults") {
  auto out = make_pipe();
  REQUIRE(out.has_value());
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  const FdPlacement fds[] = {{out->write.get(), 1}};
  auto pid = spawn({"/bin/sh", "-c", "grep '^SigIgn' /proc/self/status"}, environment_with({}), fds);
  ::sigaction(SIGPIPE, &old, nullptr);
  REQUIRE(pid.has_value());
  (void)out->write.close();
  std::string line = read_all(out->read.get());
  CHECK(wait_exit(*pid) == 0);
  // SIGPIPE is signal 13: bit 12 of the mask, the 0x1000 of the last hex digits.
  REQUIRE(line.size() > 4);
  unsigned long mask = std::strtoul(line.substr(line.find(':') + 1).c_str(), nullptr, 16);
  CHECK((mask & (1UL << (SIGPIPE - 1))) == 0);
}

TEST_CASE("spawn: a program that cannot run is an error naming it") {
  auto pid = spawn({"/nonexistent/tiki-program"}, environment_with({}), {});
  REQUIRE_FALSE(pid.has_value());
  CHECK(pid.error().message().find("/nonexistent/tiki-program") != std::string::npos);
  CHECK_FALSE(spawn({}, environment_with({}), {}).has_value());
}
