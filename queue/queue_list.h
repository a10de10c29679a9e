// queue/queue_list.h: reading the queue for mailq (and sendmail -bp): each committed entry
// (todo/<id>) with its age, message size, sender and each recipient's state from done/<id>.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "common/remote_result.h"
#include "common/status.h"

namespace tikimail {

struct ListedRecipient {
  enum class State {
    kQueued,    // not tried yet
    kDeferred,  // failed temporarily: info/<id> has its attempts, next try and last answer
    kFailed,    // failed for good, its notice not sent yet (bounce/<id>)
    kDone,      // finished: delivered, or failed and noticed (done/<id>)
  };
  std::string address;
  State state = State::kQueued;
  unsigned attempts = 0;
  time_t next_try = 0;
  RemoteResult last;  // kDeferred, kFailed: the last answer
};

struct ListedEntry {
  std::string id;
  time_t queued_at = 0;  // mtime of todo/<id>: when the entry was committed
  uint64_t bytes = 0;    // the message's size, from the trailer of todo/<id>
  std::string sender;    // "" for the null sender
  std::string mark;      // "bounce", "doublebounce", "delay" for notices deliver made
  std::vector<ListedRecipient> rcpts;
  std::string problem;   // empty, or why the entry could not be read whole
};

// The entries of `queue_dir`/todo, sorted by id (oldest first). An entry that vanishes while
// it is read (deliver finished it) is skipped; one that cannot be read is listed with its
// `problem` set. Error only when todo/ itself cannot be read.
Result<std::vector<ListedEntry>> list_queue(const std::string& queue_dir);

// "45s", "12m05s", "3h07m", "2d04h": the age of an entry, coarser as it grows.
std::string format_age(time_t seconds);

// The listing of one entry, one line per fact:
//   <id>  age 3h07m  size 1834  from <sender>          (" (bounce)" etc. after a mark)
//     done      <rcpt>
//     queued    <rcpt>
//     deferred  <rcpt>  attempts 3  next in 12m05s     ("next now" when due)
//               last: mx.example.net[192.0.2.1]:25 said "451 4.3.0 try later"
//     failed    <rcpt>  notice pending
//               last: no such user
std::string format_entry(const ListedEntry& entry, time_t now);

// The last line: "1 message in the queue" / "N messages in the queue".
std::string format_count(size_t count);

// The whole listing of `queue_dir` on `out_fd`, problems on stderr as "<program>: ...".
// Returns 0, or 111 when the queue cannot be read or an entry had a problem.
int print_queue(const std::string& queue_dir, int out_fd, std::string_view program);

}  // namespace tikimail
