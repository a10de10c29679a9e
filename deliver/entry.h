// deliver/entry.h: one queue entry's delivery, the work of one child of the runner. Its exit
// status is the answer the runner schedules by.
#pragma once

#include <string>

#include "common/log.h"
#include "common/maildir.h"

namespace tikimail {

namespace entry_exit {
inline constexpr int kFinished = 0;   // every recipient finished; the entry is removed
inline constexpr int kLeft = 1;       // a recipient failed temporarily or was deferred
inline constexpr int kBusy = 2;       // another process holds the entry's lock: try again soon
inline constexpr int kTrouble = 111;  // the child could not do its work (unreadable file ...)
}  // namespace entry_exit

// Delivers the unfinished recipients of entry `id` under `queue_dir` in envelope order:
// reads todo/<id> (the envelope), done/<id> (finished indexes) and mess/<id>, delivers each
// local recipient, appends each finished one (delivered or permanently failed) to done/<id>,
// and when none is left unlinks todo/<id>, done/<id>, mess/<id> in that order.
// The entry is locked (flock on todo/<id>) for the whole run, so that a child left running
// by a killed runner and the restarted runner's child never work on it together.
// Control files are read relative to the working directory (the prefix).
// Returns one of entry_exit; logs one line per recipient event.
int deliver_entry(const std::string& queue_dir, const std::string& id, MaildirWriter& writer,
                  const Log& log);

}  // namespace tikimail
