// deliver/remote.h: the remote stage as seen from an entry's child: running bin/deliver-remote
// for one domain's recipients (deliver-remote/README.md), and the connection slots that keep
// the number of remote connections within control/concurrencyremote.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "common/remote_result.h"
#include "common/status.h"

namespace tikimail {

// One connection's worth of work: recipients of one domain (at most kMaxRemoteRcpts).
struct RemoteCall {
  std::string domain;               // lowercase
  std::string sender;               // envelope form, "" for the null sender
  std::vector<std::string> rcpts;   // envelope form
  int message_fd = -1;              // todo/<id>: the message is its first message_bytes bytes
  uint64_t message_bytes = 0;       // passed as `-l`: deliver-remote reads no further
  std::string msgid;                // the entry's id, for deliver-remote's log lines
};


// What does a call: run_deliver_remote in service, a fake in tests. An error means every
// recipient of the call failed temporarily for that reason.
using RemoteRunner = std::function<Result<std::vector<RemoteResult>>(const RemoteCall&)>;

// Runs `program -l <message_bytes> <domain> <sender> <rcpt>...` (bin/deliver-remote) with the
// entry file on fd 0 at offset 0, reads its result lines from fd 1 (at most 1 MB), and waits
// for it at most `limit`, then kills it. Its stderr is ours (the log). The environment holds
// MSGID only.
Result<std::vector<RemoteResult>> run_deliver_remote(const std::string& program, const RemoteCall& call,
                                                     std::chrono::seconds limit);

// Connection slots as open-file-description locks on bytes of one file (queue/lock/remote):
// bytes 0..global-1 are the global slots, and each domain has its own range further on. The
// kernel drops a lock when its holder dies, so a crash never leaks a slot.
class RemoteSlots {
 public:
  // Opens (creating) the lock file.
  static Result<RemoteSlots> open(const std::string& path);
  RemoteSlots(RemoteSlots&&) = default;
  ~RemoteSlots() { release(); }

  // Takes a free global slot (of `global`) and a free slot of `domain` (of `per_domain`);
  // false, holding nothing, when either is full. At most one pair is held at a time.
  bool acquire(std::string_view domain, unsigned global, unsigned per_domain);
  void release();

 private:
  explicit RemoteSlots(Fd fd) : fd_(std::move(fd)) {}
  bool lock_one(off_t first, unsigned count, off_t* held);
  Fd fd_;
  off_t global_ = -1, domain_ = -1;
};

}  // namespace tikimail
