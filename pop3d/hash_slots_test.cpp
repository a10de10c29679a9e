// pop3d/hash_slots_test.cpp: control/concurrencyhash and the slots of users/hashslots.
#include "pop3d/hash_slots.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <optional>

#include "common/test_util.h"

using namespace tikimail;
using namespace std::chrono_literals;
using tikimail::testing::TempDir;

TEST_CASE("hash slots: control/concurrencyhash, and the CPUs when it is missing") {
  TempDir dir;
  std::string control = (dir.path() / "concurrencyhash").string();
  auto missing = load_hash_slot_count(control);
  REQUIRE(missing);
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  CHECK(*missing == static_cast<unsigned>(std::clamp<long>(cpus, 1, kMaxHashSlots)));
  dir.write("concurrencyhash", "# two at once\n3\n");
  auto three = load_hash_slot_count(control);
  REQUIRE(three);
  CHECK(*three == 3);
  for (const char* bad : {"0\n", "257\n", "two\n", "-1\n"}) {
    INFO(bad);
    dir.write("concurrencyhash", bad);
    auto count = load_hash_slot_count(control);
    REQUIRE_FALSE(count);
    CHECK(count.error().message().find("concurrencyhash") != std::string::npos);
  }
}

TEST_CASE("hash slots: N checks hold N slots; the next waits, and fails temporarily after its wait") {
  TempDir dir;
  std::string path = (dir.path() / "hashslots").string();
  auto first = take_hash_slot(path, 2, 1s);
  REQUIRE(first);
  auto second = take_hash_slot(path, 2, 1s);
  REQUIRE(second);
  CHECK(first->index() != second->index());
  CHECK(second->waited() < 500ms);
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  auto start = std::chrono::steady_clock::now();
  auto third = take_hash_slot(path, 2, 1s);
  REQUIRE_FALSE(third);
  CHECK(std::chrono::steady_clock::now() - start >= 1s);
  CHECK(third.error().temporary_failure());
  CHECK(third.error().message() == "all 2 password check slots busy for 1 s");
}

TEST_CASE("hash slots: a waiting check takes the slot the moment it is given back") {
  TempDir dir;
  std::string path = (dir.path() / "hashslots").string();
  std::optional<HashSlot> held;
  {
    auto taken = take_hash_slot(path, 1, 1s);
    REQUIRE(taken);
    held.emplace(std::move(*taken));
  }
  auto waiter = std::async(std::launch::async, [&] { return take_hash_slot(path, 1, 10s); });
  CHECK(waiter.wait_for(300ms) == std::future_status::timeout);  // still waiting
  held.reset();
  auto got = waiter.get();
  REQUIRE(got);
  CHECK(got->index() == 0);
  CHECK(got->waited() >= 250ms);
  CHECK(got->waited() < 5s);
}

TEST_CASE("hash slots: a slot held by a process goes with it") {
  TempDir dir;
  std::string path = (dir.path() / "hashslots").string();
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t child = ::fork();
  if (child == 0) {
    auto taken = take_hash_slot(path, 1, 1s);
    char c = taken ? 'y' : 'n';
    (void)::write(ready[1], &c, 1);
    ::pause();  // killed below, holding the slot
    ::_exit(0);
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  CHECK(c == 'y');
  auto busy = take_hash_slot(path, 1, 100ms);
  CHECK_FALSE(busy);
  ::kill(child, SIGKILL);
  int status;
  ::waitpid(child, &status, 0);
  auto freed = take_hash_slot(path, 1, 1s);
  CHECK(freed);
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST_CASE("hash slots: a symbolic link or an unreadable place is a permanent error, never a wait") {
  TempDir dir;
  std::filesystem::create_symlink(dir.path() / "elsewhere", dir.path() / "hashslots");
  auto linked = take_hash_slot((dir.path() / "hashslots").string(), 2, 1s);
  REQUIRE_FALSE(linked);
  CHECK(linked.error().permanent_failure());
  CHECK_FALSE(std::filesystem::exists(dir.path() / "elsewhere"));
  auto nowhere = take_hash_slot((dir.path() / "no/such/dir/hashslots").string(), 2, 1s);
  REQUIRE_FALSE(nowhere);
  CHECK(nowhere.error().permanent_failure());
}
