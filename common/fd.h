// common/fd.h: one owner per file descriptor, and the few syscalls every program needs,
// each turning errno into a Status once.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tikimail {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();  // last resort; a file that was written to must be closed with close()

  // A borrowed fd (0, 1, 6 ...) is not closed by this object.
  static Fd borrow(int fd) { Fd f(fd); f.borrowed_ = true; return f; }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  // After writing, a failed close is a failed write (NFS reports errors here).
  Status close();

 private:
  int fd_;
  bool borrowed_ = false;
};

// open(2) with O_CLOEXEC always added. `what` names the file in errors.
Result<Fd> open_file(const std::string& path, int flags, int mode = 0600);
// Writes all of `bytes`, retrying on EINTR and short writes.
Status write_all(int fd, std::string_view bytes);
// Reads a whole (small) file; fails permanently above `max` bytes.
Result<std::string> read_file(const std::string& path, size_t max);
// Reads exactly `size` bytes at `offset` into `out` with pread (EINTR retried; the fd's
// offset is neither used nor moved), for a reader that knows the file holds at least `total`
// bytes. A file that ends sooner is a temporary error "<what>: it ends after N of <total>
// bytes"; a read error is "<what>: <reason>".
Status pread_exact(int fd, char* out, size_t size, uint64_t offset, uint64_t total, std::string_view what);
// fsync the file; then the directory holding a just-created or renamed name,
// so that the name itself survives a crash.
Status sync_fd(int fd, std::string_view what);
Status sync_dir(const std::string& dir);
// Writes `content` to `path` atomically: temporary file beside it, fsync,
// rename over, fsync the directory. Readers see the old or the new file whole.
Status replace_file(const std::string& path, std::string_view content, int mode);

// Sets TCP_NODELAY on `fd` so that short writes (a reply, POP3's terminator after a body, a
// TLS record) leave at once instead of waiting for the peer's delayed ACK. Ok, doing nothing,
// when `fd` is not a TCP socket (a pipe, a unix socket: ENOTSOCK, EOPNOTSUPP, ENOPROTOOPT).
Status set_no_delay(int fd);

// Fds passed over a unix socket (SCM_RIGHTS), at most this many in one message.
inline constexpr size_t kMaxPassedFds = 4;

// One sendmsg(2) of all of `data` (not empty) with `fds` attached (none, or at most
// kMaxPassedFds), MSG_NOSIGNAL, retried on EINTR. A short send is an error: the messages
// this is for are small and go on fresh unix sockets. `what` names the peer in errors.
Status send_with_fds(int sock, std::string_view data, std::span<const int> fds, std::string_view what);

// One recvmsg(2) into `buf`, MSG_CMSG_CLOEXEC added to `flags`: the byte count (0 at EOF,
// -1 with errno). Every fd that came with it is appended to *fds, owned; *truncated is set
// when data or fds were cut (MSG_TRUNC, MSG_CTRUNC: more than kMaxPassedFds came).
ssize_t receive_with_fds(int sock, char* buf, size_t size, int flags, std::vector<Fd>* fds, bool* truncated);

// A pipe whose two ends are O_CLOEXEC; the caller dup2()s ends into a child.
struct Pipe {
  Fd read;
  Fd write;
};
Result<Pipe> make_pipe();

}  // namespace tikimail
