// pop3d/hash_slots.h: at most N password checks at once on the host (pop3d/README.md, "Hash
// slots"). An argon2id check maps 64 MiB and takes about 0.15 s of one core; a burst of logins
// on the four ports tcpserver serves 40 at a time could map 10 GiB. checkpassword therefore
// holds one of N slots while it hashes, so the checks never take more than N x 64 MiB: an OFD
// write lock on byte i (0 <= i < N) of users/hashslots. The kernel drops the lock when the
// file is closed, at exec or at death, so a killed checkpassword never keeps its slot.
#pragma once

#include <chrono>
#include <string>

#include "common/fd.h"
#include "common/status.h"

namespace tikimail {

inline constexpr const char* kHashSlotsPath = "users/hashslots";
inline constexpr const char* kHashSlotsControl = "control/concurrencyhash";
inline constexpr unsigned kMaxHashSlots = 256;
// How long a check waits for a slot before the login fails temporarily ([SYS/TEMP], 454).
inline constexpr std::chrono::seconds kHashSlotWait{30};
// Between two tries of every slot while all are taken.
inline constexpr std::chrono::milliseconds kHashSlotPoll{5};

// control/concurrencyhash: 1 to kMaxHashSlots; missing or empty: the number of online CPUs
// (at most kMaxHashSlots). Anything else is an error naming the file.
Result<unsigned> load_hash_slot_count(const std::string& control_path = kHashSlotsControl);

// One held slot; the lock goes with the object (or with the process).
class HashSlot {
 public:
  HashSlot(Fd fd, unsigned index, std::chrono::milliseconds waited)
      : fd_(std::move(fd)), index_(index), waited_(waited) {}
  unsigned index() const { return index_; }
  std::chrono::milliseconds waited() const { return waited_; }

 private:
  Fd fd_;
  unsigned index_;
  std::chrono::milliseconds waited_;
};

// Takes one of `count` slots of the lock file `path` (created empty, mode 0600, when missing;
// a symbolic link is refused). Every slot is tried, starting from one that depends on the pid,
// then all again every kHashSlotPoll until `wait` has passed. Errors: permanent when the file
// cannot be opened or locked (the caller may go on without a slot and say so), temporary when
// every slot stayed taken for `wait` ("all 2 password check slots busy for 30 s").
Result<HashSlot> take_hash_slot(const std::string& path, unsigned count, std::chrono::milliseconds wait);

}  // namespace tikimail
