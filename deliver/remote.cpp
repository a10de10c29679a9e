// deliver/remote.cpp: fork, exec deliver-remote, read its result lines with a deadline;
// connection slots as byte-range locks.
#include "deliver/remote.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <cstdio>

#include "common/lineio.h"

namespace tikimail {

namespace {

constexpr size_t kMaxOutput = 1024 * 1024;
constexpr int kExecFailed = 127;  // the child's status when exec failed (it logged errno)  // 100 lines of at most ~1.4 kB each, with room
constexpr off_t kDomainBase = off_t(1) << 20;
constexpr off_t kDomainRanges = off_t(1) << 30;
constexpr off_t kDomainRange = 1024;  // per-domain limits are at most 1000

// FNV-1a: spreads domains over the ranges; two domains sharing a range only share a limit.
uint64_t domain_hash(std::string_view domain) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : domain) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// Waits for `pid` without a limit (it was killed or has closed its output).
int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

}  // namespace

Result<std::vector<RemoteResult>> run_deliver_remote(const std::string& program, const RemoteCall& call,
                                                     std::chrono::seconds limit) {
  if (call.rcpts.empty() || call.rcpts.size() > kMaxRemoteRcpts) return Status::temporary("bad recipient count");
  if (::lseek(call.message_fd, 0, SEEK_SET) != 0) return Status::from_errno("lseek message", errno);
  auto out = make_pipe();
  if (!out) return out.error();

  // Built before fork: the child only calls async-signal-safe functions.
  // The entry file holds the envelope and the trailer after the message: `-l` says where the
  // message ends (deliver-remote/README.md).
  std::vector<std::string> words = {program, "-l", std::to_string(call.message_bytes), call.domain, call.sender};
  words.insert(words.end(), call.rcpts.begin(), call.rcpts.end());
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  std::string msgid = "MSGID=" + call.msgid;
  char* envp[] = {msgid.data(), nullptr};
  // What the child says when exec fails (the entry's child is single-threaded, so the
  // child of fork may format it).
  std::string exec_failed = fmt::format("deliver: warning: {} cannot run {}: ", call.msgid, program);
  pid_t pid = ::fork();
  if (pid < 0) return Status::from_errno("fork", errno);
  if (pid == 0) {
    int w = ::fcntl(out->write.get(), F_DUPFD, 10);
    int m = ::fcntl(call.message_fd, F_DUPFD, 10);
    if (w < 0 || m < 0 || ::dup2(m, 0) < 0 || ::dup2(w, 1) < 0) ::_exit(111);
    ::close(w);
    ::close(m);
    ::signal(SIGPIPE, SIG_DFL);
    ::execve(argv[0], argv.data(), envp);
    std::string why = exec_failed + std::strerror(errno) + "\n";
    (void)!::write(2, why.data(), why.size());
    ::_exit(kExecFailed);
  }
  (void)out->write.close();

  Deadline deadline = Deadline::after(limit);
  std::string output;
  char buf[8192];
  bool timed_out = false, too_long = false;
  for (;;) {
    struct pollfd p = {out->read.get(), POLLIN, 0};
    int n = ::poll(&p, 1, deadline.poll_ms());
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || deadline.passed()) {
      timed_out = true;
      break;
    }
    ssize_t got = ::read(out->read.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    output.append(buf, static_cast<size_t>(got));
    if (output.size() > kMaxOutput) {
      too_long = true;
      break;
    }
  }
  // A set-uid deliver-remote (tiki-remote) cannot be signalled by us: it ends itself by its
  // own alarm (deliver-remote/README.md), which `limit` exceeds; then this waits for that.
  (void)out->read.close();  // a child still writing gets EPIPE instead of blocking
  if ((timed_out || too_long) && ::kill(pid, SIGKILL) != 0)
    fmt::print(stderr, "deliver: warning: {} cannot stop deliver-remote (pid {}): {}; waiting for it\n", call.msgid,
               pid, std::strerror(errno));
  int status = wait_exit(pid);
  if (timed_out) return Status::temporary(fmt::format("deliver-remote took longer than {}s", limit.count()));
  if (too_long) return Status::temporary("deliver-remote wrote too much");
  if (WIFSIGNALED(status)) return Status::temporary(fmt::format("deliver-remote killed by signal {}", WTERMSIG(status)));
  if (WEXITSTATUS(status) == kExecFailed) return Status::temporary(fmt::format("cannot run {} (see the log)", program));
  if (WEXITSTATUS(status) != 0) return Status::temporary(fmt::format("deliver-remote exited {}", WEXITSTATUS(status)));
  return decode_results(output, call.rcpts.size());
}

Result<RemoteSlots> RemoteSlots::open(const std::string& path) {
  auto fd = open_file(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (!fd) return fd.error();
  return RemoteSlots(std::move(*fd));
}

bool RemoteSlots::lock_one(off_t first, unsigned count, off_t* held) {
  for (unsigned i = 0; i < count; ++i) {
    struct flock lk;
    std::memset(&lk, 0, sizeof lk);
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET;
    lk.l_start = first + i;
    lk.l_len = 1;
    if (::fcntl(fd_.get(), F_OFD_SETLK, &lk) == 0) {
      *held = first + i;
      return true;
    }
  }
  return false;
}

bool RemoteSlots::acquire(std::string_view domain, unsigned global, unsigned per_domain) {
  release();
  if (!fd_.valid()) return false;
  if (!lock_one(0, global, &global_)) return false;
  off_t range = kDomainBase + static_cast<off_t>(domain_hash(domain) % kDomainRanges) * kDomainRange;
  if (!lock_one(range, std::min<unsigned>(per_domain, kDomainRange), &domain_)) {
    release();
    return false;
  }
  return true;
}

void RemoteSlots::release() {
  for (off_t* held : {&global_, &domain_}) {
    if (*held < 0) continue;
    struct flock lk;
    std::memset(&lk, 0, sizeof lk);
    lk.l_type = F_UNLCK;
    lk.l_whence = SEEK_SET;
    lk.l_start = *held;
    lk.l_len = 1;
    if (fd_.valid()) (void)::fcntl(fd_.get(), F_OFD_SETLK, &lk);
    *held = -1;
  }
}

}  // namespace tikimail
