// deliver/entry_test.cpp: one queue entry through a child's work, in a real temporary prefix.
#include "deliver/entry.h"

#include <fcntl.h>
#include <sys/file.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "common/fd.h"
#include "common/queue_proto.h"
#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::ScopedChdir;
using tikimail::testing::TempDir;

namespace {

constexpr const char* kId = "6560000012345678";
const std::string kMessage = "Subject: test\n\nHello.\n";

// A prefix with example.test, accounts alice and bob (with Maildirs) and carol (without).
void make_prefix(const TempDir& dir) {
  for (const char* sub : {"tmp", "mess", "todo", "done"})
    std::filesystem::create_directories(dir.path() / "queue" / sub);
  dir.write("control/rcpthosts", "example.test\n");
  dir.write("control/postmaster", "alice@example.test\n");
  dir.write("users/recipients", "alice@example.test\nbob@example.test\ncarol@example.test\n");
  for (const char* user : {"alice", "bob"})
    for (const char* sub : {"tmp", "new", "cur"})
      std::filesystem::create_directories(dir.path() / "mail/example.test" / user / "Maildir" / sub);
}

void enqueue(const TempDir& dir, const Envelope& env) {
  dir.write(std::string("queue/mess/") + kId, kMessage);
  dir.write(std::string("queue/todo/") + kId, encode_envelope(env));
}

std::vector<std::string> mailbox(const TempDir& dir, const std::string& user) {
  std::vector<std::string> messages;
  auto newdir = dir.path() / "mail/example.test" / user / "Maildir/new";
  for (const auto& e : std::filesystem::directory_iterator(newdir)) messages.push_back(dir.read(
      std::filesystem::relative(e.path(), dir.path())));
  return messages;
}

bool queued(const TempDir& dir, const char* sub) {
  return std::filesystem::exists(dir.path() / "queue" / sub / kId);
}

int run_entry(const TempDir& dir) {
  ScopedChdir in(dir.path());
  MaildirWriter writer("mx.example.test");
  Log log("deliver-test");
  return deliver_entry("queue", kId, writer, log);
}

}  // namespace

TEST_CASE("entry: every local recipient gets the message, then the entry is removed") {
  TempDir dir;
  make_prefix(dir);
  enqueue(dir, Envelope{"sender@remote.test", {"Alice@example.test", "bob@example.test"}});
  CHECK(run_entry(dir) == entry_exit::kFinished);
  CHECK(mailbox(dir, "alice") ==
        std::vector<std::string>{"Return-Path: <sender@remote.test>\nDelivered-To: alice@example.test\n" + kMessage});
  CHECK(mailbox(dir, "bob") ==
        std::vector<std::string>{"Return-Path: <sender@remote.test>\nDelivered-To: bob@example.test\n" + kMessage});
  CHECK_FALSE(queued(dir, "todo"));
  CHECK_FALSE(queued(dir, "done"));
  CHECK_FALSE(queued(dir, "mess"));
}

TEST_CASE("entry: remote and temporary recipients stay, finished ones are recorded once") {
  TempDir dir;
  make_prefix(dir);
  // alice: delivered; far@remote.test: deferred; nobody: failed; carol: no Maildir yet.
  enqueue(dir, Envelope{"", {"alice@example.test", "far@remote.test", "nobody@example.test",
                             "carol@example.test"}});
  CHECK(run_entry(dir) == entry_exit::kLeft);
  CHECK(dir.read(std::string("queue/done/") + kId) == "0\n2\n");
  CHECK(queued(dir, "todo"));
  CHECK(queued(dir, "mess"));
  CHECK(mailbox(dir, "alice").size() == 1);
  CHECK(mailbox(dir, "alice")[0].starts_with("Return-Path: <>\n"));

  // A retry delivers nobody twice; carol's Maildir appears (mailpasswd) and she gets it.
  for (const char* sub : {"tmp", "new", "cur"})
    std::filesystem::create_directories(dir.path() / "mail/example.test/carol/Maildir" / sub);
  CHECK(run_entry(dir) == entry_exit::kLeft);
  CHECK(mailbox(dir, "alice").size() == 1);
  CHECK(mailbox(dir, "carol").size() == 1);
  CHECK(dir.read(std::string("queue/done/") + kId) == "0\n2\n3\n");
}

TEST_CASE("entry: recipients listed in done/ are skipped after a restart") {
  TempDir dir;
  make_prefix(dir);
  enqueue(dir, Envelope{"s@x.test", {"alice@example.test", "bob@example.test"}});
  dir.write(std::string("queue/done/") + kId, "0\n");
  CHECK(run_entry(dir) == entry_exit::kFinished);
  CHECK(mailbox(dir, "bob").size() == 1);
  CHECK(std::filesystem::is_empty(dir.path() / "mail/example.test/alice/Maildir/new"));
}

TEST_CASE("entry: postmaster goes to control/postmaster and Delivered-To says so") {
  TempDir dir;
  make_prefix(dir);
  enqueue(dir, Envelope{"s@x.test", {"PostMaster"}});
  CHECK(run_entry(dir) == entry_exit::kFinished);
  auto got = mailbox(dir, "alice");
  REQUIRE(got.size() == 1);
  CHECK(got[0].starts_with("Return-Path: <s@x.test>\nDelivered-To: alice@example.test\n"));
}

TEST_CASE("entry: an entry locked by another process is busy and untouched") {
  TempDir dir;
  make_prefix(dir);
  enqueue(dir, Envelope{"s@x.test", {"alice@example.test"}});
  auto held = open_file((dir.path() / "queue/todo" / kId).string(), O_RDONLY);
  REQUIRE(held);
  REQUIRE(::flock(held->get(), LOCK_EX | LOCK_NB) == 0);
  CHECK(run_entry(dir) == entry_exit::kBusy);
  CHECK(std::filesystem::is_empty(dir.path() / "mail/example.test/alice/Maildir/new"));
}

TEST_CASE("entry: a vanished entry is finished, a missing message is trouble") {
  TempDir dir;
  make_prefix(dir);
  CHECK(run_entry(dir) == entry_exit::kFinished);
  dir.write(std::string("queue/todo/") + kId, encode_envelope(Envelope{"s@x.test", {"alice@example.test"}}));
  CHECK(run_entry(dir) == entry_exit::kTrouble);
  CHECK(queued(dir, "todo"));
}
