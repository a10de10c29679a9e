// common/queue_state.h: deliver's records about an entry besides done/<id> (queue/README.md),
// which mailq reads too.
//
//   queue/info/<id>    the retry state of each unfinished recipient that was tried: advice for
//                      the schedule and for mailq, replaced whole (rename) after each try and
//                      never synced: losing it only makes the next try come sooner.
//   queue/bounce/<id>  recipients that failed for good and still wait for their notice:
//                      appended and synced before the recipient is recorded in done/<id>, so
//                      a crash can repeat a notice but never lose one.
#pragma once

#include <ctime>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/remote_result.h"
#include "common/status.h"

namespace tikimail {

struct RecipientState {
  unsigned attempts = 0;     // tries that ended in a temporary failure
  time_t first_failure = 0;  // the first of them
  time_t last_try = 0;
  time_t next_try = 0;       // not tried again before this (unless flushed)
  RemoteResult last;         // the last answer (kind Z)
};

struct EntryInfo {
  time_t warned = 0;                        // when a delay notice went out; 0: none yet
  std::map<size_t, RecipientState> rcpts;   // by envelope index
};

// queue/info/<id>: an optional line "W <warned>", then one line per recipient:
//   <index> <attempts> <first_failure> <last_try> <next_try> <result line (remote_result.h)>
std::string format_entry_info(const EntryInfo& info);
// Malformed lines, torn lines and indexes not below rcpt_count are skipped.
EntryInfo parse_entry_info(std::string_view text, size_t rcpt_count);
// A missing file is an empty EntryInfo.
Result<EntryInfo> read_entry_info(const std::string& path, size_t rcpt_count);
// Writes `path`.tmp and renames it over `path`; an empty info removes `path`.
Status write_entry_info(const std::string& path, const EntryInfo& info);

// One recipient that failed for good: result.kind is D (refused, unknown user ...), or Z when
// the queue lifetime ran out while it kept failing temporarily.
struct BounceRecord {
  size_t index = 0;
  RemoteResult result;
};

// queue/bounce/<id>: one line per record, "<index> <result line>". Only whole lines count; a
// later record for the same index replaces an earlier one (a crash between the record and
// done/<id> tries the recipient again).
std::vector<BounceRecord> parse_bounce_records(std::string_view text, size_t rcpt_count);
Result<std::vector<BounceRecord>> read_bounce_records(const std::string& path, size_t rcpt_count);
// Appends one record and fdatasyncs it (common/done_file.h append_record).
Status append_bounce_record(const std::string& path, size_t index, const RemoteResult& result);

}  // namespace tikimail
