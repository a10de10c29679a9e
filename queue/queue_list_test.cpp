// queue/queue_list_test.cpp: what mailq reads from a real queue directory and how it prints it.
#include "queue/queue_list.h"

#include "common/done_file.h"

#include <catch2/catch.hpp>
#include <filesystem>

#include "common/queue_file.h"
#include "common/queue_proto.h"
#include "common/queue_state.h"
#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::TempDir;
namespace fs = std::filesystem;

namespace {

struct Queue {
  TempDir dir;
  Queue() {
    for (const char* sub : {"tmp", "todo", "done", "info", "bounce"}) fs::create_directories(dir.path() / "queue" / sub);
  }
  std::string path() const { return (dir.path() / "queue").string(); }
  void entry(const std::string& id, const Envelope& env, const std::string& message) const {
    dir.write("queue/todo/" + id, queue_file_contents(message, encode_envelope(env)));
  }
};

}  // namespace

TEST_CASE("mailq: done/<id> lines mark recipients done; torn and bad lines are ignored") {
  CHECK(parse_done("", 3) == std::vector<bool>{false, false, false});
  CHECK(parse_done("0\n2\n", 3) == std::vector<bool>{true, false, true});
  CHECK(parse_done("1\nx\n7\n-1\n2", 3) == std::vector<bool>{false, true, false});
}

TEST_CASE("mailq: entries come sorted by id with sender, size and recipient states") {
  Queue q;
  q.entry("00000002aaaaaaaa", {"", {"x@y.test"}}, "later\n");
  q.entry("00000001bbbbbbbb", {"a@x.test", {"b@y.test", "c@z.test"}}, "hello\n");
  q.dir.write("queue/done/00000001bbbbbbbb", "1\n");
  q.dir.write("queue/todo/not-an-id", "ignored");
  q.dir.write("queue/tmp/00000003cccccccc", "being written: not an entry");
  auto entries = list_queue(q.path());
  REQUIRE(entries);
  REQUIRE(entries->size() == 2);
  const ListedEntry& first = (*entries)[0];
  CHECK(first.id == "00000001bbbbbbbb");
  CHECK(first.sender == "a@x.test");
  CHECK(first.bytes == 6);
  REQUIRE(first.rcpts.size() == 2);
  CHECK(first.rcpts[0].state == ListedRecipient::State::kQueued);
  CHECK(first.rcpts[1].state == ListedRecipient::State::kDone);
  CHECK(first.problem.empty());
  CHECK((*entries)[1].sender.empty());
}

TEST_CASE("mailq: info/<id> and bounce/<id> give deferred and failed recipients their details") {
  Queue q;
  const std::string id = "00000001bbbbbbbb";
  q.entry(id, {"a@x.test", {"b@far.test", "c@far.test", "d@far.test"}}, "hello\n");
  EntryInfo info;
  info.rcpts[0] = {2, 100, 160, 400, {RemoteResult::Kind::kTemporary, "4.4.1", "", false, "connection refused"}};
  REQUIRE(write_entry_info((q.dir.path() / "queue/info" / id).string(), info));
  REQUIRE(append_bounce_record((q.dir.path() / "queue/bounce" / id).string(), 1,
                               {RemoteResult::Kind::kPermanent, "5.1.1", "mx[192.0.2.1]:25", true, "550 unknown"}));
  REQUIRE(append_done((q.dir.path() / "queue/done" / id).string(), 1));
  auto entries = list_queue(q.path());
  REQUIRE(entries);
  REQUIRE(entries->size() == 1);
  const auto& r = (*entries)[0].rcpts;
  CHECK(r[0].state == ListedRecipient::State::kDeferred);
  CHECK(r[0].attempts == 2);
  CHECK(r[0].next_try == 400);
  CHECK(r[0].last.text == "connection refused");
  CHECK(r[1].state == ListedRecipient::State::kFailed);
  CHECK(r[1].last.text == "550 unknown");
  CHECK(r[2].state == ListedRecipient::State::kQueued);
}

TEST_CASE("mailq: an unreadable queue is an error, an entry with a bad envelope a problem") {
  TempDir empty;
  CHECK_FALSE(list_queue((empty.path() / "queue").string()));
  Queue q;
  q.dir.write("queue/todo/0000000100000001", "garbage");
  q.dir.write("queue/todo/0000000200000002", queue_file_contents("m\n", "Xbad envelope"));
  auto entries = list_queue(q.path());
  REQUIRE(entries);
  REQUIRE(entries->size() == 2);
  CHECK((*entries)[0].problem.find("not a queue entry") != std::string::npos);
  CHECK((*entries)[1].problem.find("malformed envelope") != std::string::npos);
}

TEST_CASE("mailq: the size is the message's, from the trailer, not the file's") {
  Queue q;
  const std::string message = "Subject: size\n\nends like a trailer" + queue_file_trailer(7);
  q.entry("00000001aaaaaaaa", {"a@x.test", {"b@y.test", "c@y.test"}}, message);
  q.entry("00000002aaaaaaaa", {"a@x.test", {"b@y.test"}}, "");
  auto entries = list_queue(q.path());
  REQUIRE(entries);
  REQUIRE(entries->size() == 2);
  CHECK((*entries)[0].bytes == message.size());
  CHECK((*entries)[0].rcpts.size() == 2);
  CHECK((*entries)[0].problem.empty());
  CHECK((*entries)[1].bytes == 0);
  CHECK((*entries)[1].problem.empty());
}

TEST_CASE("mailq: ages are printed coarser as they grow") {
  CHECK(format_age(45) == "45s");
  CHECK(format_age(725) == "12m05s");
  CHECK(format_age(3 * 3600 + 7 * 60 + 5) == "3h07m");
  CHECK(format_age(2 * 86400 + 4 * 3600) == "2d04h");
  CHECK(format_age(-3) == "0s");
}

TEST_CASE("mailq: one entry prints its facts and each recipient's state") {
  ListedEntry e;
  e.id = "5f0c2a91e3b4c5d6";
  e.queued_at = 1000;
  e.bytes = 1834;
  e.sender = "a@x.test";
  using State = ListedRecipient::State;
  e.rcpts.resize(5);
  e.rcpts[0].address = "b@y.test";
  e.rcpts[1].address = "c@z.test";
  e.rcpts[1].state = State::kDone;
  e.rcpts[2] = {"d@far.test", State::kDeferred, 3, 1065 + 725,
                {RemoteResult::Kind::kTemporary, "4.3.0", "mx.far.test[192.0.2.1]:25", true, "451 4.3.0 try later"}};
  e.rcpts[3] = {"e@far.test", State::kDeferred, 1, 900,
                {RemoteResult::Kind::kTemporary, "4.4.1", "", false, "connection refused"}};
  e.rcpts[4] = {"f@far.test", State::kFailed, 0, 0,
                {RemoteResult::Kind::kPermanent, "5.1.1", "mx.far.test[192.0.2.1]:25", true, "550 no such user"}};
  CHECK(format_entry(e, 1065) ==
        "5f0c2a91e3b4c5d6  age 1m05s  size 1834  from <a@x.test>\n"
        "  queued    <b@y.test>\n"
        "  done      <c@z.test>\n"
        "  deferred  <d@far.test>  attempts 3  next in 12m05s\n"
        "            last: mx.far.test[192.0.2.1]:25 said \"451 4.3.0 try later\"\n"
        "  deferred  <e@far.test>  attempts 1  next now\n"
        "            last: connection refused\n"
        "  failed    <f@far.test>  notice pending\n"
        "            last: mx.far.test[192.0.2.1]:25 said \"550 no such user\"\n");
  e.sender = "";
  e.mark = "bounce";
  e.rcpts.resize(1);
  CHECK(format_entry(e, 1065).starts_with("5f0c2a91e3b4c5d6  age 1m05s  size 1834  from <> (bounce)\n"));
  CHECK(format_count(1) == "1 message in the queue\n");
  CHECK(format_count(0) == "0 messages in the queue\n");
}
