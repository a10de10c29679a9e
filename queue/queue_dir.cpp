// queue/queue_dir.cpp: the durable store of one message (queue/README.md, "Commit order").
#include "queue/queue_dir.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/fd.h"

namespace tikimail {

namespace {

constexpr size_t kReadChunk = 65536;

// Waits until `fd` can be read or the deadline passes. A regular file is always ready.
IoCode wait_readable(int fd, Deadline deadline) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, deadline.poll_ms());
    if (n > 0) return IoCode::kOk;
    if (n == 0) return IoCode::kTimeout;
    if (errno != EINTR) return IoCode::kError;
  }
}

// One read of at most `size` bytes before the deadline: the count, 0 at EOF, or -1 with
// *code set (kTimeout or kError, errno kept for the message).
ssize_t timed_read(int fd, char* buf, size_t size, Deadline deadline, IoCode* code) {
  for (;;) {
    *code = wait_readable(fd, deadline);
    if (*code != IoCode::kOk) return -1;
    ssize_t n = ::read(fd, buf, size);
    if (n >= 0) return n;
    if (errno == EINTR || errno == EAGAIN) continue;  // EAGAIN: a non-blocking fd raced us
    *code = IoCode::kError;
    return -1;
  }
}

// rename(2) that refuses to replace an existing name (an id in use is never overwritten).
// Falls back to link + unlink where the filesystem has no RENAME_NOREPLACE.
int rename_noreplace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return -1;
  if (::link(from.c_str(), to.c_str()) != 0) return -1;
  ::unlink(from.c_str());  // a leftover in tmp/ is garbage deliver removes
  return 0;
}

// The files this attempt created; removed on destruction unless committed.
class Leftovers {
 public:
  Leftovers() = default;
  Leftovers(const Leftovers&) = delete;
  Leftovers& operator=(const Leftovers&) = delete;
  // Newest first (queue/README.md, "Exit codes").
  ~Leftovers() {
    for (auto p = paths_.rbegin(); p != paths_.rend(); ++p) ::unlink(p->c_str());
  }
  void add(std::string path) { paths_.push_back(std::move(path)); }
  void replace(const std::string& from, std::string to) {
    for (auto& p : paths_)
      if (p == from) p = std::move(to);
  }
  void commit() { paths_.clear(); }

 private:
  std::vector<std::string> paths_;
};

StoreOutcome failed(int code, std::string why) {
  StoreOutcome out;
  out.exit_code = code;
  out.error = std::move(why);
  return out;
}

StoreOutcome failed(int code, const Status& status) { return failed(code, status.message()); }

std::string errno_text(std::string_view what, int err) {
  return fmt::format("{}: {}", what, std::strerror(err));
}

}  // namespace

std::string choose_message_id(const char* msgid_env) {
  if (msgid_env != nullptr && valid_message_id(msgid_env)) return msgid_env;
  return new_message_id();
}

EnvelopeScanner::State EnvelopeScanner::scan(std::string_view bytes) {
  // Fields: F<sender>\0, then T<rcpt>\0 any number of times, then one more \0.
  while (field_ < bytes.size()) {
    char tag = bytes[field_];
    if (field_ == 0 ? tag != 'F' : (tag != 'T' && tag != '\0')) return State::kMalformed;
    if (tag == '\0') {
      length_ = field_ + 1;
      return State::kComplete;
    }
    size_t nul = bytes.find('\0', field_ + 1);
    if (nul == std::string_view::npos) return State::kIncomplete;
    field_ = nul + 1;
  }
  return State::kIncomplete;
}

EnvelopeRead read_envelope(int fd, Deadline deadline) {
  EnvelopeRead out;
  EnvelopeScanner scanner;
  std::string bytes;
  char buf[4096];
  for (;;) {
    auto state = scanner.scan(bytes);
    if (state == EnvelopeScanner::State::kMalformed) {
      out.exit_code = queue_exit::kEnvelopeFormat;
      out.error = "envelope format error";
      return out;
    }
    // Complete or not, the limit holds for what was read: a reader of the entry file takes
    // no envelope part above kMaxEnvelope (common/queue_file.h).
    if (state == EnvelopeScanner::State::kComplete ? scanner.length() > kMaxEnvelope
                                                   : bytes.size() > kMaxEnvelope) {
      out.exit_code = queue_exit::kRefused;
      out.error = fmt::format("envelope larger than {} bytes", kMaxEnvelope);
      return out;
    }
    if (state == EnvelopeScanner::State::kComplete) break;
    // Byte-wise reads would be exact but slow; the caller sends nothing after the envelope.
    IoCode code;
    ssize_t n = timed_read(fd, buf, sizeof buf, deadline, &code);
    if (n < 0) {
      out.exit_code = code == IoCode::kTimeout ? queue_exit::kTimeout : queue_exit::kReadError;
      out.error = code == IoCode::kTimeout ? "timeout reading the envelope"
                                           : errno_text("read envelope", errno);
      return out;
    }
    if (n == 0) {
      out.exit_code = queue_exit::kReadError;
      out.error = bytes.empty() ? "no envelope: the caller gave up on the message"
                                : "envelope cut short: the caller gave up on the message";
      return out;
    }
    bytes.append(buf, static_cast<size_t>(n));
  }
  EnvelopeDecode decoded = decode_envelope(std::string_view(bytes).substr(0, scanner.length()));
  out.exit_code = decoded.exit_code;
  if (decoded.exit_code == queue_exit::kAddressTooLong) out.error = "envelope address too long";
  else if (decoded.exit_code != queue_exit::kOk) out.error = "envelope format error";
  out.envelope = std::move(decoded.envelope);
  return out;
}

StoreOutcome QueueDir::store(int message_fd, int envelope_fd, const std::string& id,
                             uint64_t max_bytes, Deadline deadline) const {
  struct stat st;
  if (::stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return failed(queue_exit::kQueueTrouble + 1, errno_text("stat " + dir_, errno));
  const std::string todo = dir_ + "/todo/" + id;
  // An id still in use is refused. In todo/, in doubt (EIO ...), it is in use; the rename
  // below refuses to replace a name anyway. done/<id> left by an unfinished removal would
  // mark the new entry's recipients as delivered; but done/ belongs to deliver and may be
  // closed to us (EACCES: queue runs set-uid, with the caller's group), and such a leftover
  // is garbage deliver removes after a day: only a file we can see counts.
  if (::lstat(todo.c_str(), &st) == 0 || errno != ENOENT)
    return failed(queue_exit::kQueueTrouble + 3, fmt::format("id {} in use: {}", id, todo));
  const std::string done = dir_ + "/done/" + id;
  if (::lstat(done.c_str(), &st) == 0 || (errno != ENOENT && errno != EACCES))
    return failed(queue_exit::kQueueTrouble + 3, fmt::format("id {} in use: {}", id, done));

  Leftovers leftovers;
  const std::string tmp = dir_ + "/tmp/" + id;
  // A spare file from the pool when there is one (common/queue_file.h), else a new one.
  Result<Fd> file = Status::temporary("no spare file");
  if (auto spare = claim_pool_file(dir_, tmp, pool_hint(id), kQueueFileMode)) file = std::move(*spare);
  else file = open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, kQueueFileMode);
  if (!file) return failed(queue_exit::kQueueTrouble + 2, file.error());
  leftovers.add(tmp);

  StoreOutcome out;
  std::string buf(kReadChunk, '\0');
  for (;;) {
    IoCode code;
    ssize_t n = timed_read(message_fd, buf.data(), buf.size(), deadline, &code);
    if (n < 0) {
      if (code == IoCode::kTimeout) return failed(queue_exit::kTimeout, "timeout reading the message");
      return failed(queue_exit::kReadError, errno_text("read message", errno));
    }
    if (n == 0) break;
    out.bytes += static_cast<uint64_t>(n);
    if (out.bytes > max_bytes)
      return failed(queue_exit::kRefused, fmt::format("message larger than {} bytes", max_bytes));
    if (Status s = write_all(file->get(), std::string_view(buf.data(), static_cast<size_t>(n))); !s)
      return failed(queue_exit::kWriteError, tmp + ": " + s.message());
  }

  // The envelope comes after the message; without it the caller gave up, so nothing is
  // synced or renamed before it is here and valid.
  EnvelopeRead env = read_envelope(envelope_fd, deadline);
  if (env.exit_code != queue_exit::kOk) return failed(env.exit_code, env.error);
  out.rcpts = env.envelope.rcpts.size();
  const std::string envelope = encode_envelope(env.envelope);
  if (envelope.size() > kMaxEnvelope)  // what a reader of the entry takes (common/queue_file.h)
    return failed(queue_exit::kRefused, fmt::format("envelope larger than {} bytes", kMaxEnvelope));

  // Step 1. The envelope and the trailer follow the message in the same file: one inode
  // per entry. The trailer comes last: a file cut short has no trailer at its end, and a
  // reader refuses it rather than take part of it for the message (common/queue_file.h).
  if (Status s = write_all(file->get(), envelope + queue_file_trailer(out.bytes)); !s)
    return failed(queue_exit::kWriteError, tmp + ": " + s.message());
  // The bytes are on disk before any name in todo/ points at them; a crash before the
  // rename leaves only tmp/<id>, which is garbage.
  if (Status s = sync_fd(file->get(), tmp); !s) return failed(queue_exit::kWriteError, s);
  if (Status s = file->close(); !s) return failed(queue_exit::kWriteError, tmp + ": " + s.message());

  // Step 2. The rename into todo/ is the commit. RENAME_NOREPLACE: an id that came into use
  // since the check above is refused, never overwritten.
  if (rename_noreplace(tmp, todo) != 0)
    return failed(queue_exit::kQueueTrouble + 3, errno_text("rename to " + todo, errno));
  leftovers.replace(tmp, todo);
  // Only once the name todo/<id> is on disk may the caller be told 0. If that sync fails the
  // entry is taken back: the caller retries, and a runner that saw it already at worst
  // delivers twice, never loses the message.
  if (Status s = sync_dir(dir_ + "/todo"); !s) return failed(queue_exit::kWriteError, s);
  leftovers.commit();
  out.exit_code = queue_exit::kOk;
  return out;
}

void QueueDir::wake() const {
  auto fifo = open_file(dir_ + "/trigger", O_WRONLY | O_NONBLOCK);
  if (!fifo) return;  // ENXIO: no runner listening; it scans todo/ when it starts
  struct stat st;
  if (::fstat(fifo->get(), &st) != 0 || !S_ISFIFO(st.st_mode)) return;
  (void)write_all(fifo->get(), std::string_view("\0", 1));  // EAGAIN: a wakeup is pending anyway
}

int store_and_log(const QueueDir& queue, int message_fd, int envelope_fd, const std::string& id,
                  uint64_t max_bytes, Deadline deadline, std::string_view note, const Log& log) {
  StoreOutcome stored = queue.store(message_fd, envelope_fd, id, max_bytes, deadline);
  if (stored.exit_code != queue_exit::kOk) {
    log.warn("{} not queued status={}{} {}", id, stored.exit_code, note, log_safe(stored.error));
    return stored.exit_code;
  }
  queue.wake();
  log.info("{} queued bytes={} rcpts={}{}", id, stored.bytes, stored.rcpts, note);
  return queue_exit::kOk;
}

void exit_on_alarm(int) { _exit(queue_exit::kTimeout); }

}  // namespace tikimail
