// deliver/runner_test.cpp: the runner in a child process over a real temporary prefix: woken
// by the trigger fifo, flushed by SIGHUP, stopped by SIGTERM with exit status 0.
#include "deliver/runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "common/fd.h"
#include "common/queue_file.h"
#include "common/queue_proto.h"
#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::TempDir;

namespace {

void make_prefix(const TempDir& dir) {
  for (const char* sub : {"tmp", "todo", "done", "info", "bounce", "lock"})
    std::filesystem::create_directories(dir.path() / "queue" / sub);
  REQUIRE(::mkfifo((dir.path() / "queue/trigger").c_str(), 0600) == 0);
  dir.write("control/rcpthosts", "example.test\n");
  dir.write("users/recipients", "alice@example.test\ncarol@example.test\n");
  for (const char* sub : {"tmp", "new", "cur"})
    std::filesystem::create_directories(dir.path() / "mail/example.test/alice/Maildir" / sub);
}

void enqueue(const TempDir& dir, const std::string& id, const std::string& rcpt) {
  dir.write("queue/todo/" + id,
            queue_file_contents("Subject: runner\n\nbody\n", encode_envelope(Envelope{"s@x.test", {rcpt}})));
}

void trigger(const TempDir& dir) {
  auto fd = open_file((dir.path() / "queue/trigger").string(), O_WRONLY | O_NONBLOCK);
  REQUIRE(fd);
  REQUIRE(write_all(fd->get(), "x"));
}

// Starts a runner in a child working in `dir`; scans and retries are an hour apart, so only
// the trigger and signals make it act.
pid_t start_runner(const TempDir& dir, unsigned concurrency = 10) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 111;
    if (::chdir(dir.path().c_str()) == 0) {
      Log log("deliver-test");
      DeliverConfig config;
      config.queuescan = 3600;
      config.retry_base = 3600;
      config.concurrency = concurrency;
      Runner runner(config, log);
      if (runner.open()) code = runner.run();
    }
    ::_exit(code);
  }
  return pid;
}

bool eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 300; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

size_t count_new(const TempDir& dir, const char* user) {
  auto newdir = dir.path() / "mail/example.test" / user / "Maildir/new";
  if (!std::filesystem::exists(newdir)) return 0;
  return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(newdir), {}));
}

int stop(pid_t pid) {
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("runner: entries present at start are delivered; a trigger byte brings a new one") {
  TempDir dir;
  make_prefix(dir);
  enqueue(dir, "6560000000000001", "alice@example.test");
  pid_t pid = start_runner(dir);
  CHECK(eventually([&] { return count_new(dir, "alice") == 1; }));
  CHECK(eventually([&] { return !std::filesystem::exists(dir.path() / "queue/todo/6560000000000001"); }));

  enqueue(dir, "6560000000000002", "alice@example.test");
  trigger(dir);
  CHECK(eventually([&] { return count_new(dir, "alice") == 2; }));
  CHECK(stop(pid) == 0);
}

TEST_CASE("runner: batches split the due entries evenly over the free children") {
  CHECK(plan_batches(0, 10).empty());
  CHECK(plan_batches(5, 0).empty());
  CHECK(plan_batches(1, 10) == std::vector<size_t>{1});
  CHECK(plan_batches(3, 10) == std::vector<size_t>{1, 1, 1});
  CHECK(plan_batches(10, 4) == std::vector<size_t>{3, 3, 2, 2});
  CHECK(plan_batches(20, 1) == std::vector<size_t>{kMaxBatch});  // the rest waits for a child
  CHECK(plan_batches(100, 3) == std::vector<size_t>{kMaxBatch, kMaxBatch, kMaxBatch});
}

TEST_CASE("runner: one child works through a batch: 40 entries with one child at a time, each delivered once") {
  TempDir dir;
  make_prefix(dir);
  // A bad entry in the middle of a batch must not stop the others: it stays queued.
  for (int i = 0; i < 40; ++i) {
    std::string id = fmt::format("65600000000001{:02x}", i);
    if (i == 7) dir.write("queue/todo/" + id, "not a queue entry");
    else enqueue(dir, id, "alice@example.test");
  }
  pid_t pid = start_runner(dir, 1);
  CHECK(eventually([&] { return count_new(dir, "alice") == 39; }));
  CHECK(eventually([&] {
    return std::distance(std::filesystem::directory_iterator(dir.path() / "queue/todo"), {}) == 1;
  }));
  CHECK(std::filesystem::exists(dir.path() / "queue/todo/6560000000000107"));
  CHECK(stop(pid) == 0);
  CHECK(count_new(dir, "alice") == 39);
}

TEST_CASE("runner: one worker serves entries that come one after another, then leaves when idle") {
  TempDir dir;
  make_prefix(dir);
  enqueue(dir, "6560000000000200", "alice@example.test");  // found by the first scan
  pid_t pid = start_runner(dir, 1);
  REQUIRE(eventually([&] { return count_new(dir, "alice") == 1; }));
  for (int i = 1; i < 5; ++i) {  // the runner listens on the fifo by now
    enqueue(dir, fmt::format("65600000000002{:02x}", i), "alice@example.test");
    trigger(dir);
    CHECK(eventually([&] { return count_new(dir, "alice") == static_cast<size_t>(i + 1); }));
  }
  // Maildir names carry the delivering process's pid (P<pid>): one process for all five.
  std::set<std::string> pids;
  for (const auto& e : std::filesystem::directory_iterator(dir.path() / "mail/example.test/alice/Maildir/new")) {
    std::string name = e.path().filename().string();
    size_t p = name.find('P'), q = name.find('Q', p);
    pids.insert(name.substr(p, q - p));
  }
  CHECK(pids.size() == 1);
  CHECK(pids.count("P" + std::to_string(pid)) == 0);  // the worker, not the runner itself
  // With nothing more to do, the worker leaves after kWorkerIdle.
  auto children = [&] {
    std::ifstream in(fmt::format("/proc/{}/task/{}/children", pid, pid));
    std::string list;
    std::getline(in, list);
    return list;
  };
  CHECK_FALSE(children().empty());
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    gone = children().empty();
  }
  CHECK(gone);
  CHECK(stop(pid) == 0);
}

TEST_CASE("runner: SIGHUP retries a deferred entry at once") {
  TempDir dir;
  make_prefix(dir);
  enqueue(dir, "6560000000000003", "carol@example.test");  // no Maildir yet: deferred an hour
  pid_t pid = start_runner(dir);
  CHECK(eventually([&] { return std::filesystem::exists(dir.path() / "queue/todo/6560000000000003"); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the first try has happened
  for (const char* sub : {"tmp", "new", "cur"})
    std::filesystem::create_directories(dir.path() / "mail/example.test/carol/Maildir" / sub);
  trigger(dir);  // a scan alone does not retry before the wait is over
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(count_new(dir, "carol") == 0);
  ::kill(pid, SIGHUP);
  CHECK(eventually([&] { return count_new(dir, "carol") == 1; }));
  CHECK(stop(pid) == 0);
}

TEST_CASE("runner: without the trigger fifo it cannot start") {
  TempDir dir;
  Log log("deliver-test");
  DeliverConfig config;
  config.queue_dir = (dir.path() / "queue").string();
  sigset_t before;
  ::sigprocmask(SIG_SETMASK, nullptr, &before);
  {
    Runner runner(config, log);
    CHECK_FALSE(runner.open());
  }
  ::sigprocmask(SIG_SETMASK, &before, nullptr);  // open() blocked the runner's signals
}
