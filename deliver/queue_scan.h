// deliver/queue_scan.h: what deliver finds in the queue directory (queue/README.md): the
// committed entries in todo/, and the garbage a crash of queue or deliver leaves behind.
#pragma once

#include <ctime>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/status.h"

namespace tikimail {

// Files older than this in tmp/, and done/<id>, info/<id> or bounce/<id> without todo/<id>,
// are garbage.
inline constexpr time_t kGarbageAge = 24 * 60 * 60;

// The ids in `queue_dir`/todo, sorted (ids start with the time, so oldest first). Names
// that are not ids (16 lowercase hex digits) are ignored.
Result<std::vector<std::string>> scan_todo(const std::string& queue_dir);

// Removes, and logs one line for each:
//  - files in tmp/ whose mtime is older than `max_age` at `now` (a queue that crashed or was
//    killed before its rename into todo/);
//  - done/<id>, info/<id> and bounce/<id> without todo/<id>, older than `max_age` (a deliver
//    that crashed while removing a finished entry), and their interrupted replacements
//    (<id>.tmp).
// The age keeps it away from an entry that `queue` is writing right now. No other directory
// is looked at.
// Returns the paths removed; a failure to remove one is logged and the rest go on.
std::vector<std::string> collect_garbage(const std::string& queue_dir, time_t now, time_t max_age,
                                         const Log& log);

}  // namespace tikimail
