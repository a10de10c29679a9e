// deliver/runner.cpp: the poll loop, the children and their exit statuses.
#include "deliver/runner.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <climits>
#include <cstdio>
#include <ctime>

#include "common/maildir.h"
#include "common/queue_state.h"
#include "deliver/entry.h"
#include "deliver/queue_scan.h"

namespace tikimail {

namespace {

constexpr std::chrono::hours kGarbageInterval{1};
constexpr std::chrono::seconds kBusyRetry{1};  // a child of the previous runner still works on it
constexpr const char* kRemoteProgram = "bin/deliver-remote";
// deliver-remote bounds each reply, its run (30 minutes for new addresses) and, by its own
// alarm, its life (an hour); this is only the last resort behind those.
constexpr std::chrono::seconds kRemoteLimit{4000};

std::chrono::seconds seconds(unsigned s) { return std::chrono::seconds(s); }

}  // namespace

Runner::Runner(DeliverConfig config, const Log& log)
    : config_(std::move(config)), log_(log),
      schedule_(seconds(config_.retry_base), seconds(config_.retry_max)) {
  sigemptyset(&old_mask_);
}

Status Runner::open() {
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGHUP, SIGALRM, SIGTERM, SIGINT, SIGCHLD}) sigaddset(&mask, sig);
  if (::sigprocmask(SIG_BLOCK, &mask, &old_mask_) != 0) return Status::from_errno("sigprocmask", errno);
  int sfd = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) return Status::from_errno("signalfd", errno);
  signals_ = Fd(sfd);

  std::string fifo = config_.queue_dir + "/trigger";
  auto trigger = open_file(fifo, O_RDWR | O_NONBLOCK);
  if (!trigger) return trigger.error();
  struct stat st;
  if (::fstat(trigger->get(), &st) != 0) return Status::from_errno("fstat " + fifo, errno);
  if (!S_ISFIFO(st.st_mode)) return Status::temporary(fifo + " is not a fifo");
  trigger_ = std::move(*trigger);
  return Status::ok();
}

int Runner::run() {
  log_.info("start concurrency={} queuescan={}s retrybase={}s retrymax={}s remote={} remotedomain={} "
            "queuelifetime={}s warnafter={}s",
            config_.concurrency, config_.queuescan, config_.retry_base, config_.retry_max, config_.remote_global,
            config_.remote_domain, config_.queuelifetime, config_.warnafter);
  next_garbage_ = Clock::now();
  for (;;) {
    auto now = Clock::now();
    if (!stopping_) {
      if (now >= next_garbage_) {
        collect_garbage(config_.queue_dir, ::time(nullptr), kGarbageAge, log_);
        next_garbage_ = now + kGarbageInterval;
      }
      if (scan_now_ || now >= next_scan_) scan(now);
      start_children(now);
    } else if (children_.empty()) {
      break;
    }
    struct pollfd fds[2] = {{signals_.get(), POLLIN, 0}, {trigger_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, stopping_ ? -1 : poll_timeout(Clock::now()));
    if (n < 0 && errno != EINTR) {
      log_.warn("poll: {}", std::strerror(errno));
      ::sleep(1);  // do not spin on an error that persists
      continue;
    }
    if (n > 0 && (fds[1].revents & POLLIN)) drain_trigger();
    if (n > 0 && (fds[0].revents & POLLIN)) read_signals(Clock::now());
  }
  log_.info("stop");
  return 0;
}

void Runner::scan(Clock::time_point now) {
  scan_now_ = false;
  next_scan_ = now + seconds(config_.queuescan);
  auto ids = scan_todo(config_.queue_dir);
  if (!ids) {
    log_.warn("{}", ids.error().message());
    return;
  }
  queue_ = std::set<std::string>(ids->begin(), ids->end());
  schedule_.retain([&](const std::string& id) { return queue_.count(id) || running_.count(id); });
  std::erase_if(forced_, [&](const std::string& id) { return !queue_.count(id); });
  if (flush_) {
    flush_ = false;
    forced_.insert(queue_.begin(), queue_.end());
    schedule_.flush();
  }
  // Entries new to this runner (after a restart): their next try is in queue/info/<id>.
  for (const auto& id : queue_) {
    if (running_.count(id) || forced_.count(id) || schedule_.known(id)) continue;
    Clock::time_point due;
    if (next_try_from_info(id, now, &due)) schedule_.retry_at(id, due);
  }
}

bool Runner::next_try_from_info(const std::string& id, Clock::time_point now, Clock::time_point* due) const {
  auto info = read_entry_info(config_.queue_dir + "/info/" + id, SIZE_MAX);
  if (!info || info->rcpts.empty()) return false;
  time_t next = 0;
  for (const auto& [i, st] : info->rcpts) next = next == 0 ? st.next_try : std::min(next, st.next_try);
  time_t wall = ::time(nullptr);
  *due = next <= wall ? now : now + std::chrono::seconds(next - wall);
  return true;
}

std::vector<size_t> plan_batches(size_t due, size_t free) {
  std::vector<size_t> sizes;
  while (due > 0 && free > 0) {
    size_t size = std::min(kMaxBatch, (due + free - 1) / free);
    sizes.push_back(size);
    due -= size;
    --free;
  }
  return sizes;
}

void Runner::start_children(Clock::time_point now) {
  if (children_.size() >= config_.concurrency) return;
  std::vector<std::string> due;
  for (const auto& id : queue_)
    if (!running_.count(id) && schedule_.due(id, now)) due.push_back(id);
  size_t next = 0;
  for (size_t size : plan_batches(due.size(), config_.concurrency - children_.size())) {
    start_child(std::vector<std::string>(due.begin() + static_cast<long>(next),
                                         due.begin() + static_cast<long>(next + size)),
                now);
    next += size;
  }
}

void Runner::start_child(std::vector<std::string> ids, Clock::time_point now) {
  std::vector<bool> force;
  for (const auto& id : ids) force.push_back(forced_.count(id) > 0);
  auto results = make_pipe();
  pid_t pid = results ? ::fork() : -1;
  if (pid < 0) {
    log_.warn("{} fork: {}", ids.front(), results ? std::strerror(errno) : results.error().message());
    for (const auto& id : ids) schedule_.retry_at(id, now + kBusyRetry);
    return;
  }
  if (pid == 0) {
    // The child: default signal handling again, none of the parent's wake-up fds.
    ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
    ::close(signals_.release());
    ::close(trigger_.release());
    (void)results->read.close();
    auto started = Clock::now();
    MaildirWriter writer;
    for (size_t k = 0; k < ids.size(); ++k) {
      int code = entry_exit::kTrouble;
      if (k > 0 && Clock::now() - started > kBatchBudget) {
        code = entry_exit::kNotStarted;
      } else {
        try {
          EntryContext ctx{config_, ::time(nullptr), force[k]};
          ctx.remote = [](const RemoteCall& call) { return run_deliver_remote(kRemoteProgram, call, kRemoteLimit); };
          ctx.inject = inject_via_chain;
          ctx.slots_path = config_.queue_dir + "/lock/remote";
          code = deliver_entry(config_.queue_dir, ids[k], ctx, writer, log_);
        } catch (...) {
          code = entry_exit::kTrouble;  // out of memory or a bug: the entry stays queued
        }
      }
      // A few bytes into a pipe nobody else writes: never blocks, never short.
      std::string line = std::to_string(k) + " " + std::to_string(code) + "\n";
      if (!write_all(results->write.get(), line)) ::_exit(111);
    }
    ::_exit(0);  // not exit(): nothing of the parent's may be flushed or destroyed twice
  }
  (void)results->write.close();
  ::fcntl(results->read.get(), F_SETFL, O_NONBLOCK);  // read in reap, after the child is gone
  for (const auto& id : ids) {
    running_.insert(id);
    forced_.erase(id);
  }
  children_[pid] = Child{std::move(ids), std::move(results->read)};
}

void Runner::reap(Clock::time_point now) {
  int status = 0;
  pid_t pid;
  while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
    auto it = children_.find(pid);
    if (it == children_.end()) continue;
    Child child = std::move(it->second);
    children_.erase(it);
    // The child is gone and the pipe's write end was only its (close-on-exec in anything it
    // ran): everything it reported is there, up to EOF.
    std::string report;
    char buf[512];
    ssize_t n;
    while ((n = ::read(child.results.get(), buf, sizeof buf)) > 0 && report.size() < 65536)
      report.append(buf, static_cast<size_t>(n));
    std::vector<int> codes(child.ids.size(), -1);
    for (size_t at = 0; at < report.size();) {
      size_t end = report.find('\n', at);
      if (end == std::string::npos) break;
      unsigned long k = 0;
      int code = -1;
      if (std::sscanf(report.c_str() + at, "%lu %d", &k, &code) == 2 && k < codes.size()) codes[k] = code;
      at = end + 1;
    }
    if (WIFSIGNALED(status)) log_.warn("{} child killed by signal {}", child.ids.front(), WTERMSIG(status));
    else if (WEXITSTATUS(status) != 0) log_.warn("{} child exited {}", child.ids.front(), WEXITSTATUS(status));
    for (size_t k = 0; k < child.ids.size(); ++k) {
      running_.erase(child.ids[k]);
      finish(child.ids[k], codes[k], now);
    }
  }
}

void Runner::finish(const std::string& id, int code, Clock::time_point now) {
  if (code == entry_exit::kFinished) {
    schedule_.forget(id);
    queue_.erase(id);
    return;
  }
  if (code == entry_exit::kBusy) {
    schedule_.retry_at(id, now + kBusyRetry);
    return;
  }
  if (code == entry_exit::kNotStarted) {
    schedule_.retry_at(id, now);
    return;
  }
  if (code == -1) log_.warn("{} no result from its child", id);
  else if (code != entry_exit::kLeft) log_.warn("{} child exited {}", id, code);
  Clock::time_point due;
  if (code == entry_exit::kLeft && next_try_from_info(id, now, &due)) {
    schedule_.retry_at(id, due);
  } else {
    due = schedule_.defer(id, now);
  }
  log_.info("{} retry after={}s", id, std::chrono::duration_cast<std::chrono::seconds>(due - now).count());
}

void Runner::read_signals(Clock::time_point now) {
  struct signalfd_siginfo info;
  bool child = false;
  while (::read(signals_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    switch (info.ssi_signo) {
      case SIGCHLD:
        child = true;
        break;
      case SIGTERM:
      case SIGINT:
        if (!stopping_) log_.info("stopping children={}", children_.size());
        stopping_ = true;
        break;
      case SIGHUP:
        reload();
        [[fallthrough]];
      case SIGALRM:
        log_.info("flush deferred={}", schedule_.size());
        flush_ = true;
        scan_now_ = true;
        break;
      default:
        break;
    }
  }
  // Signals coalesce: one SIGCHLD may stand for several children, so reap them all.
  if (child) reap(now);
}

void Runner::drain_trigger() {
  char buf[4096];
  while (::read(trigger_.get(), buf, sizeof buf) > 0) {
  }
  scan_now_ = true;
}

void Runner::reload() {
  auto config = DeliverConfig::load();
  if (!config) {
    log_.warn("keeping the old configuration: {}", config.error().message());
    return;
  }
  config_ = std::move(*config);
  schedule_.set_limits(seconds(config_.retry_base), seconds(config_.retry_max));
}

int Runner::poll_timeout(Clock::time_point now) const {
  Clock::time_point wake = std::min(next_scan_, next_garbage_);
  if (children_.size() < config_.concurrency) {
    for (const auto& id : queue_)
      if (!running_.count(id)) wake = std::min(wake, schedule_.due_at(id));
  }
  if (wake <= now) return 0;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count() + 1;
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

}  // namespace tikimail
