// pop3d/hash_slots.cpp: the slots of pop3d/hash_slots.h, as OFD byte locks on one file.
#include "pop3d/hash_slots.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include <fmt/format.h>

#include "common/control.h"

namespace tikimail {

namespace {

// True when byte `index` is now ours; false when another open file holds it.
Result<bool> try_slot(int fd, unsigned index, const std::string& path) {
  struct flock lock = {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = static_cast<off_t>(index);
  lock.l_len = 1;  // l_pid stays 0, as F_OFD_SETLK requires
  if (::fcntl(fd, F_OFD_SETLK, &lock) == 0) return true;
  if (errno == EAGAIN || errno == EACCES || errno == EINTR) return false;
  return Status::permanent(Status::from_errno("lock " + path, errno).message());
}

}  // namespace

Result<unsigned> load_hash_slot_count(const std::string& control_path) {
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  uint64_t fallback = std::clamp<long>(cpus, 1, kMaxHashSlots);
  auto count = read_control_uint(control_path, fallback);
  if (!count) return count.error();
  if (*count < 1 || *count > kMaxHashSlots)
    return Status::temporary(fmt::format("{}: {} is not between 1 and {}", control_path, *count, kMaxHashSlots));
  return static_cast<unsigned>(*count);
}

Result<HashSlot> take_hash_slot(const std::string& path, unsigned count, std::chrono::milliseconds wait) {
  auto fd = open_file(path, O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
  if (!fd) return Status::permanent(fd.error().message());
  auto start = std::chrono::steady_clock::now();
  auto until = start + wait;
  unsigned first = static_cast<unsigned>(::getpid()) % count;
  for (;;) {
    for (unsigned k = 0; k < count; ++k) {
      unsigned index = (first + k) % count;
      auto got = try_slot(fd->get(), index, path);
      if (!got) return got.error();
      if (*got) {
        auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
        return HashSlot(std::move(*fd), index, waited);
      }
    }
    if (std::chrono::steady_clock::now() >= until)
      return Status::temporary(fmt::format("all {} password check slots busy for {} s", count,
                                           std::chrono::duration_cast<std::chrono::seconds>(wait).count()));
    std::this_thread::sleep_for(kHashSlotPoll);
  }
}

}  // namespace tikimail
