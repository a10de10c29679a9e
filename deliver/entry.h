// deliver/entry.h: one queue entry's delivery, the work of one child of the runner. Its exit
// status is the answer the runner schedules by.
#pragma once

#include <ctime>
#include <string>

#include "common/log.h"
#include "common/maildir.h"
#include "deliver/config.h"
#include "deliver/notice.h"
#include "deliver/remote.h"

namespace tikimail {

namespace entry_exit {
inline constexpr int kFinished = 0;   // every recipient finished; the entry is removed
inline constexpr int kLeft = 1;       // a recipient is left for later (queue/info/<id> says when)
inline constexpr int kBusy = 2;       // another process holds the entry's lock: try again soon
inline constexpr int kNotStarted = 3; // a child's batch ran out of time before this entry: at once
inline constexpr int kTrouble = 111;  // the child could not do its work (unreadable file ...)
}  // namespace entry_exit

// What a child works with besides the queue.
struct EntryContext {
  const DeliverConfig& config;
  time_t now = 0;
  bool force = false;      // flushed: try every unfinished recipient, whatever its next try
  RemoteRunner remote = {};  // delivers one domain's recipients; empty: remote ones wait
  Injector inject = {};      // queues a notice; empty: notices wait
  std::string slots_path = {};  // the connection slot file (queue/lock/remote); empty: no limits
};

// Delivers the unfinished recipients of entry `id` under `queue_dir` whose next try has come
// (deliver/README.md): local ones into their Maildirs in envelope order, remote ones one
// domain at a time through ctx.remote. A finished recipient (delivered, or failed for good) is
// appended to done/<id> before the next starts; one that failed for good is first appended to
// bounce/<id>. A temporary failure is retried later, with growing waits, until the queue
// lifetime has passed: then it fails for good. After the recipients, pending failures become
// one notice to the sender (common/queue_proto.h marks; a double bounce goes to
// control/doublebounceto and a failed double bounce is dropped), and the retry state is written
// to info/<id>. When nothing is left the entry is removed: todo/<id> first, then done/, info/
// and bounce/.
// todo/<id> is the whole entry (common/queue_file.h): the envelope comes from it, and the same
// fd is the message, read up to the trailer's length and no further, so that the envelope and
// the trailer never reach a Maildir or a notice; deliver-remote gets the fd and that length
// (RemoteCall) and stops there too.
// The entry is locked (flock on todo/<id>) for the whole run, so that a child left running
// by a killed runner and the restarted runner's child never work on it together.
// Control files are read relative to the working directory (the prefix).
// Returns one of entry_exit; logs one line per recipient attempt.
int deliver_entry(const std::string& queue_dir, const std::string& id, const EntryContext& ctx,
                  MaildirWriter& writer, const Log& log);

}  // namespace tikimail
