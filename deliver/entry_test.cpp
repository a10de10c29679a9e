// deliver/entry_test.cpp: one queue entry through a child's work, in a real temporary prefix.
#include "deliver/entry.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "common/fd.h"
#include "common/queue_file.h"
#include "common/queue_proto.h"
#include "common/queue_state.h"
#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::ScopedChdir;
using tikimail::testing::TempDir;

namespace {

constexpr const char* kId = "6560000012345678";
const std::string kMessage = "Subject: test\n\nHello.\n";

// A prefix with example.test, accounts alice and bob (with Maildirs) and carol (without).
void make_prefix(const TempDir& dir) {
  for (const char* sub : {"tmp", "todo", "done", "info", "bounce", "lock"})
    std::filesystem::create_directories(dir.path() / "queue" / sub);
  dir.write("control/rcpthosts", "example.test\n");
  dir.write("control/postmaster", "alice@example.test\n");
  dir.write("users/recipients", "alice@example.test\nbob@example.test\ncarol@example.test\n");
  for (const char* user : {"alice", "bob"})
    for (const char* sub : {"tmp", "new", "cur"})
      std::filesystem::create_directories(dir.path() / "mail/example.test" / user / "Maildir" / sub);
}

// The entry file as queue writes it: message, envelope, trailer (common/queue_file.h).
void enqueue(const TempDir& dir, const Envelope& env, const std::string& message = kMessage) {
  dir.write(std::string("queue/todo/") + kId, queue_file_contents(message, encode_envelope(env)));
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

// What the child did outside the queue: remote calls and notices, both faked.
struct World {
  DeliverConfig config;
  time_t now = ::time(nullptr);
  bool force = false;
  bool remote = true;
  bool inject_ok = true;
  // The answer of the fake remote stage: one result per recipient of a call.
  std::function<RemoteResult(const std::string& rcpt)> answer = [](const std::string&) {
    return RemoteResult{RemoteResult::Kind::kDelivered, "2.0.0", "mx.remote.test[192.0.2.1]:25", true, "250 2.0.0 ok"};
  };
  std::vector<RemoteCall> calls;
  std::vector<std::string> sent;  // per call: the first message_bytes of its fd, as deliver-remote reads
  std::vector<std::pair<Envelope, std::string>> notices;
};

// The first `bytes` bytes of `fd` from offset 0.
std::string read_prefix(int fd, uint64_t bytes) {
  std::string out(bytes, '\0');
  REQUIRE(::pread(fd, out.data(), out.size(), 0) == static_cast<ssize_t>(bytes));
  return out;
}

int run_entry(const TempDir& dir, World& world) {
  ScopedChdir in(dir.path());
  MaildirWriter writer("mx.example.test");
  Log log("deliver-test");
  EntryContext ctx{world.config, world.now, world.force};
  if (world.remote) {
    ctx.remote = [&](const RemoteCall& call) -> Result<std::vector<RemoteResult>> {
      world.calls.push_back(call);
      world.sent.push_back(read_prefix(call.message_fd, call.message_bytes));
      std::vector<RemoteResult> results;
      for (const auto& r : call.rcpts) results.push_back(world.answer(r));
      return results;
    };
  }
  ctx.inject = [&](const Envelope& env, const std::string& message) -> Status {
    if (!world.inject_ok) return Status::temporary("queue is down");
    world.notices.emplace_back(env, message);
    return Status::ok();
  };
  return deliver_entry("queue", kId, ctx, writer, log);
}

int run_entry(const TempDir& dir) {
  World world;
  return run_entry(dir, world);
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
  CHECK_FALSE(std::filesystem::exists(dir.path() / "queue/mess"));
}

TEST_CASE("entry: temporary recipients stay, finished ones are recorded once") {
  TempDir dir;
  make_prefix(dir);
  // alice: delivered; far@remote.test: remote, deferred; nobody: failed; carol: no Maildir yet.
  enqueue(dir, Envelope{"s@x.test", {"alice@example.test", "far@remote.test", "nobody@example.test",
                                     "carol@example.test"}});
  World world;
  world.answer = [](const std::string&) {
    return RemoteResult{RemoteResult::Kind::kTemporary, "4.4.1", "", false, "connection refused"};
  };
  CHECK(run_entry(dir, world) == entry_exit::kLeft);
  CHECK(dir.read(std::string("queue/done/") + kId) == "0\n2\n");
  CHECK(queued(dir, "todo"));
  CHECK(mailbox(dir, "alice").size() == 1);
  CHECK(mailbox(dir, "alice")[0].starts_with("Return-Path: <s@x.test>\n"));
  // nobody bounced at once; far and carol wait in info/ with one attempt each.
  REQUIRE(world.notices.size() == 1);
  CHECK(world.notices[0].first.rcpts == std::vector<std::string>{"s@x.test"});
  CHECK_FALSE(queued(dir, "bounce"));
  auto info = parse_entry_info(dir.read(std::string("queue/info/") + kId), 4);
  REQUIRE(info.rcpts.size() == 2);
  CHECK(info.rcpts.at(1).attempts == 1);
  CHECK(info.rcpts.at(1).next_try == world.now + 60);
  CHECK(info.rcpts.at(1).last.text == "connection refused");
  CHECK(info.rcpts.at(3).attempts == 1);

  // Before the next try is due nothing happens; flushed, carol's new Maildir gets the message.
  for (const char* sub : {"tmp", "new", "cur"})
    std::filesystem::create_directories(dir.path() / "mail/example.test/carol/Maildir" / sub);
  world.calls.clear();
  CHECK(run_entry(dir, world) == entry_exit::kLeft);
  CHECK(mailbox(dir, "carol").empty());
  CHECK(world.calls.empty());
  world.force = true;
  CHECK(run_entry(dir, world) == entry_exit::kLeft);
  CHECK(mailbox(dir, "alice").size() == 1);
  CHECK(mailbox(dir, "carol").size() == 1);
  CHECK(world.calls.size() == 1);
  CHECK(world.notices.size() == 1);
  CHECK(dir.read(std::string("queue/done/") + kId) == "0\n2\n3\n");
  CHECK(parse_entry_info(dir.read(std::string("queue/info/") + kId), 4).rcpts.at(1).attempts == 2);
}

TEST_CASE("entry: remote recipients go one call per domain, in envelope order") {
  TempDir dir;
  make_prefix(dir);
  enqueue(dir, Envelope{"s@x.test", {"a@far.test", "alice@example.test", "B@Near.test", "c@far.test"}});
  World world;
  CHECK(run_entry(dir, world) == entry_exit::kFinished);
  REQUIRE(world.calls.size() == 2);
  CHECK(world.calls[0].domain == "far.test");
  CHECK(world.calls[0].rcpts == std::vector<std::string>{"a@far.test", "c@far.test"});
  CHECK(world.calls[0].sender == "s@x.test");
  CHECK(world.calls[0].msgid == kId);
  CHECK(world.calls[0].message_bytes == kMessage.size());
  CHECK(world.sent == std::vector<std::string>{kMessage, kMessage});
  CHECK(world.calls[1].domain == "near.test");
  CHECK(world.calls[1].rcpts == std::vector<std::string>{"B@near.test"});  // the local part keeps its case
  CHECK(world.notices.empty());
  CHECK_FALSE(queued(dir, "todo"));
  CHECK_FALSE(queued(dir, "info"));
}

TEST_CASE("entry: postmaster mapped to a remote address is sent as that address") {
  TempDir dir;
  make_prefix(dir);
  dir.write("control/postmaster", "admin@far.test\n");
  enqueue(dir, Envelope{"s@x.test", {"postmaster", "PostMaster@example.test"}});
  World world;
  CHECK(run_entry(dir, world) == entry_exit::kFinished);
  REQUIRE(world.calls.size() == 1);
  CHECK(world.calls[0].domain == "far.test");
  CHECK(world.calls[0].rcpts == std::vector<std::string>{"admin@far.test", "admin@far.test"});
}

TEST_CASE("entry: a domain whose slots stay taken past the lifetime bounces") {
  TempDir dir;
  make_prefix(dir);
  enqueue(dir, Envelope{"s@x.test", {"a@far.test"}});
  World world;
  world.config.remote_domain = 1;
  world.config.queuelifetime = 100;
  world.now += 200;
  auto opened = RemoteSlots::open((dir.path() / "queue/lock/remote").string());
  REQUIRE(opened);
  REQUIRE(opened->acquire("far.test", 20, 1));
  ScopedChdir in(dir.path());
  MaildirWriter writer("mx.example.test");
  Log log("deliver-test");
  EntryContext ctx{world.config, world.now, false};
  ctx.remote = [&](const RemoteCall&) -> Result<std::vector<RemoteResult>> { return Status::temporary("unused"); };
  std::vector<std::pair<Envelope, std::string>> notices;
  ctx.inject = [&](const Envelope& env, const std::string& message) -> Status {
    notices.emplace_back(env, message);
    return Status::ok();
  };
  ctx.slots_path = "queue/lock/remote";
  CHECK(deliver_entry("queue", kId, ctx, writer, log) == entry_exit::kFinished);
  REQUIRE(notices.size() == 1);
  CHECK(notices[0].second.find("Status: 4.4.5") != std::string::npos);
  CHECK(notices[0].second.find("Action: failed") != std::string::npos);
}

TEST_CASE("entry: a permanent remote failure becomes one notice to the sender, with the reply") {
  TempDir dir;
  make_prefix(dir);
  enqueue(dir, Envelope{"s@x.test", {"a@far.test", "b@far.test", "ok@far.test"}});
  World world;
  world.answer = [](const std::string& rcpt) {
    if (rcpt == "ok@far.test")
      return RemoteResult{RemoteResult::Kind::kDelivered, "2.0.0", "mx.far.test[192.0.2.1]:25", true, "250 ok"};
    return RemoteResult{RemoteResult::Kind::kPermanent, "5.1.1", "mx.far.test[192.0.2.1]:25", true,
                        "550 5.1.1 <" + rcpt + ">: no such user"};
  };
  CHECK(run_entry(dir, world) == entry_exit::kFinished);
  REQUIRE(world.notices.size() == 1);
  const auto& [env, message] = world.notices[0];
  CHECK(env.sender.empty());
  CHECK(env.mark == "bounce");
  CHECK(env.rcpts == std::vector<std::string>{"s@x.test"});
  CHECK(message.find("Final-Recipient: rfc822; a@far.test") != std::string::npos);
  CHECK(message.find("Final-Recipient: rfc822; b@far.test") != std::string::npos);
  CHECK(message.find("ok@far.test") == std::string::npos);
  CHECK(message.find("Diagnostic-Code: smtp; 550 5.1.1 <a@far.test>: no such user") != std::string::npos);
  CHECK(message.find("Status: 5.1.1") != std::string::npos);
  CHECK_FALSE(queued(dir, "todo"));
  CHECK_FALSE(queued(dir, "bounce"));
}

TEST_CASE("entry: a notice the queue cannot take stays pending, and the entry with it") {
  TempDir dir;
  make_prefix(dir);
  enqueue(dir, Envelope{"s@x.test", {"nobody@example.test"}});
  World world;
  world.inject_ok = false;
  CHECK(run_entry(dir, world) == entry_exit::kLeft);
  CHECK(queued(dir, "bounce"));
  CHECK(queued(dir, "todo"));
  CHECK(dir.read(std::string("queue/done/") + kId) == "0\n");
  world.inject_ok = true;
  CHECK(run_entry(dir, world) == entry_exit::kFinished);
  CHECK(world.notices.size() == 1);
  CHECK_FALSE(queued(dir, "todo"));
}

TEST_CASE("entry: null sender failures double-bounce to postmaster; a failed double bounce is dropped") {
  TempDir dir;
  make_prefix(dir);
  enqueue(dir, Envelope{"", {"nobody@example.test"}});
  World world;
  CHECK(run_entry(dir, world) == entry_exit::kFinished);
  REQUIRE(world.notices.size() == 1);
  CHECK(world.notices[0].first.mark == "doublebounce");
  CHECK(world.notices[0].first.rcpts == std::vector<std::string>{"postmaster"});
  CHECK(world.notices[0].first.sender.empty());

  dir.write("control/doublebounceto", "root@example.test\n");
  enqueue(dir, Envelope{"", {"nobody@example.test"}, "bounce"});
  CHECK(run_entry(dir, world) == entry_exit::kFinished);
  REQUIRE(world.notices.size() == 2);
  CHECK(world.notices[1].first.rcpts == std::vector<std::string>{"root@example.test"});

  enqueue(dir, Envelope{"", {"nobody@example.test"}, "doublebounce"});
  CHECK(run_entry(dir, world) == entry_exit::kFinished);
  CHECK(world.notices.size() == 2);
  CHECK_FALSE(queued(dir, "bounce"));
}

TEST_CASE("entry: past the queue lifetime a temporary failure bounces") {
  TempDir dir;
  make_prefix(dir);
  enqueue(dir, Envelope{"s@x.test", {"a@far.test", "carol@example.test"}});
  World world;
  world.config.queuelifetime = 100;
  world.answer = [](const std::string&) {
    return RemoteResult{RemoteResult::Kind::kTemporary, "4.2.2", "mx.far.test[192.0.2.1]:25", true, "452 4.2.2 full"};
  };
  CHECK(run_entry(dir, world) == entry_exit::kLeft);
  CHECK(world.notices.empty());
  world.now += 200;
  CHECK(run_entry(dir, world) == entry_exit::kFinished);
  REQUIRE(world.notices.size() == 1);
  const std::string& message = world.notices[0].second;
  CHECK(message.find("Action: failed") != std::string::npos);
  CHECK(message.find("Status: 4.2.2") != std::string::npos);
  CHECK(message.find("Diagnostic-Code: smtp; 452 4.2.2 full") != std::string::npos);
  CHECK(message.find("carol@example.test") != std::string::npos);
}

TEST_CASE("entry: a delay warning goes once after warnafter, to the sender only") {
  TempDir dir;
  make_prefix(dir);
  enqueue(dir, Envelope{"s@x.test", {"a@far.test"}});
  World world;
  world.config.warnafter = 50;
  world.answer = [](const std::string&) {
    return RemoteResult{RemoteResult::Kind::kTemporary, "4.4.1", "", false, "connection timed out"};
  };
  CHECK(run_entry(dir, world) == entry_exit::kLeft);
  CHECK(world.notices.empty());
  world.now += 100;
  world.force = true;
  CHECK(run_entry(dir, world) == entry_exit::kLeft);
  REQUIRE(world.notices.size() == 1);
  CHECK(world.notices[0].first.mark == "delay");
  CHECK(world.notices[0].second.find("Action: delayed") != std::string::npos);
  world.now += 100;
  CHECK(run_entry(dir, world) == entry_exit::kLeft);
  CHECK(world.notices.size() == 1);
}

TEST_CASE("entry: a domain whose slots are taken waits seconds, without an attempt") {
  TempDir dir;
  make_prefix(dir);
  enqueue(dir, Envelope{"s@x.test", {"a@far.test"}});
  World world;
  world.config.remote_domain = 1;
  auto opened = RemoteSlots::open((dir.path() / "queue/lock/remote").string());
  REQUIRE(opened);
  RemoteSlots& other = *opened;
  REQUIRE(other.acquire("far.test", 20, 1));
  {
    ScopedChdir in(dir.path());
    MaildirWriter writer("mx.example.test");
    Log log("deliver-test");
    EntryContext ctx{world.config, world.now, false};
    ctx.remote = [&](const RemoteCall& call) -> Result<std::vector<RemoteResult>> {
      world.calls.push_back(call);
      return std::vector<RemoteResult>(call.rcpts.size(), RemoteResult{RemoteResult::Kind::kDelivered, "2.0.0", "", true, "250 ok"});
    };
    ctx.slots_path = "queue/lock/remote";
    CHECK(deliver_entry("queue", kId, ctx, writer, log) == entry_exit::kLeft);
    CHECK(world.calls.empty());
    auto info = parse_entry_info(dir.read(std::string("queue/info/") + kId), 1);
    CHECK(info.rcpts.at(0).attempts == 0);
    CHECK(info.rcpts.at(0).next_try >= world.now + 5);
    CHECK(info.rcpts.at(0).next_try <= world.now + 15);
    other.release();
    ctx.force = true;
    CHECK(deliver_entry("queue", kId, ctx, writer, log) == entry_exit::kFinished);
    CHECK(world.calls.size() == 1);
  }
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

TEST_CASE("entry: a vanished entry is finished; a file that is not a complete entry is trouble and stays") {
  TempDir dir;
  make_prefix(dir);
  CHECK(run_entry(dir) == entry_exit::kFinished);
  const std::string envelope = encode_envelope(Envelope{"s@x.test", {"alice@example.test"}});
  const std::string whole = queue_file_contents(kMessage, envelope);
  // The envelope alone (the older two-file layout), a file cut short, a trailer whose length
  // passes the file, and a valid trailer around a malformed envelope.
  for (const std::string& content : {envelope, whole.substr(0, whole.size() - 1),
                                     kMessage + envelope + queue_file_trailer(1000),
                                     queue_file_contents(kMessage, "Xnot an envelope")}) {
    dir.write(std::string("queue/todo/") + kId, content);
    CHECK(run_entry(dir) == entry_exit::kTrouble);
    CHECK(dir.read(std::string("queue/todo/") + kId) == content);
    CHECK(std::filesystem::is_empty(dir.path() / "mail/example.test/alice/Maildir/new"));
  }
}

TEST_CASE("entry: the message is delivered byte for byte, never the envelope or the trailer") {
  // No final newline, empty, and ending in bytes that look like a trailer: each reaches the
  // Maildir, deliver-remote and a notice exactly, and nothing of what follows it in the file.
  const std::string like_trailer = "Subject: tricky\n\nends like a trailer" + queue_file_trailer(5);
  for (const std::string& message : {std::string("Subject: x\n\nno newline at the end"), std::string(),
                                     like_trailer}) {
    TempDir dir;
    make_prefix(dir);
    enqueue(dir, Envelope{"s@x.test", {"alice@example.test", "a@far.test", "nobody@example.test"}}, message);
    World world;
    CHECK(run_entry(dir, world) == entry_exit::kFinished);
    CHECK(mailbox(dir, "alice") ==
          std::vector<std::string>{"Return-Path: <s@x.test>\nDelivered-To: alice@example.test\n" + message});
    REQUIRE(world.calls.size() == 1);
    CHECK(world.calls[0].message_bytes == message.size());
    CHECK(world.sent == std::vector<std::string>{message});
    REQUIRE(world.notices.size() == 1);
    const std::string& notice = world.notices[0].second;
    CHECK(notice.find("Tnobody@example.test") == std::string::npos);  // the stored envelope
    CHECK(notice.find("Ta@far.test") == std::string::npos);
    std::string attached = message.empty() || message.ends_with('\n') ? message : message + "\n";
    CHECK(notice.find("Content-Type: message/rfc822\n") != std::string::npos);
    CHECK(notice.find("Content-Transfer-Encoding: 7bit\n\n" + attached + "\n--=_") != std::string::npos);
  }
}
