// deliver/queue_scan_test.cpp: which entries deliver picks up, and which files are garbage.
#include "deliver/queue_scan.h"

#include <sys/time.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::TempDir;

namespace {

// Sets a file's mtime `age` seconds before `now`.
void backdate(const std::filesystem::path& path, time_t now, time_t age) {
  struct timeval times[2] = {{now - age, 0}, {now - age, 0}};
  REQUIRE(::utimes(path.c_str(), times) == 0);
}

void make_queue(const TempDir& dir) {
  for (const char* sub : {"tmp", "todo", "done", "info", "bounce"})
    std::filesystem::create_directories(dir.path() / "queue" / sub);
}

}  // namespace

TEST_CASE("queue scan: only 16-hex-digit names in todo/ are entries, oldest first") {
  TempDir dir;
  make_queue(dir);
  dir.write("queue/todo/6560000000000002", "");
  dir.write("queue/todo/6550000000000001", "");
  dir.write("queue/todo/6560000000000002.tmp", "");
  dir.write("queue/todo/656000000000000G", "");
  dir.write("queue/todo/65600000000000AB", "");
  dir.write("queue/todo/.hidden", "");
  auto ids = scan_todo((dir.path() / "queue").string());
  REQUIRE(ids);
  CHECK(*ids == std::vector<std::string>{"6550000000000001", "6560000000000002"});
}

TEST_CASE("queue scan: a missing todo/ is an error") {
  TempDir dir;
  CHECK_FALSE(scan_todo((dir.path() / "queue").string()));
}

TEST_CASE("queue garbage: old tmp files and old orphans go, everything else stays") {
  TempDir dir;
  make_queue(dir);
  Log log("deliver-test");
  time_t now = ::time(nullptr);
  auto q = dir.path() / "queue";
  const time_t day = kGarbageAge;

  dir.write("queue/tmp/aaaaaaaaaaaaaaa1", "x");     // queue crashed a day ago
  dir.write("queue/tmp/aaaaaaaaaaaaaaa2", "x");     // queue is writing it now
  dir.write("queue/todo/aaaaaaaaaaaaaaa3", "x");    // a live entry, however old
  dir.write("queue/done/aaaaaaaaaaaaaaa4", "0\n");  // old, no todo: deliver crashed removing it
  dir.write("queue/info/aaaaaaaaaaaaaaa4", "x");
  dir.write("queue/bounce/aaaaaaaaaaaaaaa4", "x");
  dir.write("queue/done/aaaaaaaaaaaaaaa3", "0\n");  // old, with todo: live
  dir.write("queue/info/aaaaaaaaaaaaaaa3.tmp", "x");  // a replacement a crash interrupted
  dir.write("queue/done/aaaaaaaaaaaaaaa5", "0\n");  // young, no todo: left alone for now
  dir.write("queue/done/not-an-id", "x");           // not ours to judge
  dir.write("queue/mess/aaaaaaaaaaaaaaa6", "x");    // an older layout's directory: never touched
  backdate(q / "tmp/aaaaaaaaaaaaaaa1", now, day + 10);
  backdate(q / "tmp/aaaaaaaaaaaaaaa2", now, day - 10);
  backdate(q / "todo/aaaaaaaaaaaaaaa3", now, 3 * day);
  for (const char* sub : {"done", "info", "bounce"}) backdate(q / sub / "aaaaaaaaaaaaaaa4", now, day + 1);
  backdate(q / "done/aaaaaaaaaaaaaaa3", now, 3 * day);
  backdate(q / "info/aaaaaaaaaaaaaaa3.tmp", now, 3 * day);
  backdate(q / "done/aaaaaaaaaaaaaaa5", now, 5);
  backdate(q / "done/not-an-id", now, 3 * day);
  backdate(q / "mess/aaaaaaaaaaaaaaa6", now, 3 * day);

  auto removed = collect_garbage(q.string(), now, day, log);
  std::sort(removed.begin(), removed.end());
  CHECK(removed == std::vector<std::string>{(q / "bounce/aaaaaaaaaaaaaaa4").string(),
                                            (q / "done/aaaaaaaaaaaaaaa4").string(),
                                            (q / "info/aaaaaaaaaaaaaaa3.tmp").string(),
                                            (q / "info/aaaaaaaaaaaaaaa4").string(),
                                            (q / "tmp/aaaaaaaaaaaaaaa1").string()});
  CHECK(std::filesystem::exists(q / "tmp/aaaaaaaaaaaaaaa2"));
  CHECK(std::filesystem::exists(q / "todo/aaaaaaaaaaaaaaa3"));
  CHECK(std::filesystem::exists(q / "done/aaaaaaaaaaaaaaa3"));
  CHECK(std::filesystem::exists(q / "done/aaaaaaaaaaaaaaa5"));
  CHECK(std::filesystem::exists(q / "done/not-an-id"));
  CHECK(std::filesystem::exists(q / "mess/aaaaaaaaaaaaaaa6"));
}
