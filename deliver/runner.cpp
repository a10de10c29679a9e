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
    // The signals, the trigger, and each worker's answers.
    std::vector<pollfd> fds{{signals_.get(), POLLIN, 0}, {trigger_.get(), POLLIN, 0}};
    std::vector<pid_t> answering;
    for (const auto& [pid, child] : children_) {
      if (!child.results.valid()) continue;
      fds.push_back({child.results.get(), POLLIN, 0});
      answering.push_back(pid);
    }
    int n = ::poll(fds.data(), fds.size(), stopping_ ? -1 : poll_timeout(Clock::now()));
    if (n < 0 && errno != EINTR) {
      log_.warn("poll: {}", std::strerror(errno));
      ::sleep(1);  // do not spin on an error that persists
      continue;
    }
    if (n <= 0) continue;
    for (size_t k = 0; k < answering.size(); ++k)
      if (fds[k + 2].revents != 0) read_results(answering[k]);
    if (fds[1].revents & POLLIN) drain_trigger();
    if (fds[0].revents & POLLIN) read_signals(Clock::now());
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
  std::vector<std::string> due;
  for (const auto& id : queue_)
    if (!running_.count(id) && schedule_.due(id, now)) due.push_back(id);
  if (due.empty()) return;
  std::vector<pid_t> idle;
  for (const auto& [pid, child] : children_)
    if (child.idle()) idle.push_back(pid);
  size_t room = config_.concurrency > children_.size() ? config_.concurrency - children_.size() : 0;
  size_t next = 0;
  for (size_t size : plan_batches(due.size(), idle.size() + room)) {
    std::vector<std::string> batch(due.begin() + static_cast<long>(next), due.begin() + static_cast<long>(next + size));
    next += size;
    pid_t pid = -1;
    if (!idle.empty()) {
      pid = idle.back();
      idle.pop_back();
    } else {
      pid = start_worker();
    }
    if (pid < 0) {  // no process to be had: logged; try again shortly
      for (const auto& id : batch) schedule_.retry_at(id, now + kBusyRetry);
    } else if (!assign(pid, batch)) {  // the worker was leaving: another takes them next round
      for (const auto& id : batch) schedule_.retry_at(id, now);
    }
  }
}

pid_t Runner::start_worker() {
  auto commands = make_pipe();
  auto results = make_pipe();
  if (!commands || !results) {
    log_.warn("worker pipe: {}", (!commands ? commands.error() : results.error()).message());
    return -1;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    log_.warn("fork: {}", std::strerror(errno));
    return -1;
  }
  if (pid == 0) {
    // The worker: default signal handling again, none of the parent's wake-up fds, and none
    // of the other workers' pipes (a copy would keep their ends open).
    ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
    ::close(signals_.release());
    ::close(trigger_.release());
    for (auto& [other, child] : children_) {
      ::close(child.commands.release());
      ::close(child.results.release());
    }
    ::close(commands->write.release());
    ::close(results->read.release());
    work(commands->read.release(), results->write.release());
  }
  (void)commands->read.close();
  (void)results->write.close();
  // Never wait on a worker: answers are read as they come, a full pipe is a failed send.
  ::fcntl(commands->write.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(results->read.get(), F_SETFL, O_NONBLOCK);
  Child child;
  child.commands = std::move(commands->write);
  child.results = std::move(results->read);
  children_[pid] = std::move(child);
  return pid;
}

bool Runner::assign(pid_t pid, const std::vector<std::string>& ids) {
  auto it = children_.find(pid);
  if (it == children_.end() || it->second.retiring) return false;
  Child& child = it->second;
  std::string lines;
  std::vector<unsigned long> seqs;
  for (const auto& id : ids) {
    seqs.push_back(child.next_seq++);
    lines += fmt::format("{} {} {}\n", seqs.back(), forced_.count(id) ? 1 : 0, id);
  }
  // One write of at most a few KB: a pipe takes it whole or not at all (PIPE_BUF is 4096 and
  // a batch is at most 16 lines of 40 bytes).
  ssize_t n = ::write(child.commands.get(), lines.data(), lines.size());
  if (n != static_cast<ssize_t>(lines.size())) {
    log_.warn("worker {}: {}", pid, n < 0 ? std::strerror(errno) : "short write");
    retire(pid);
    return false;
  }
  for (size_t k = 0; k < ids.size(); ++k) {
    child.in_flight[seqs[k]] = ids[k];
    running_.insert(ids[k]);
    forced_.erase(ids[k]);
  }
  return true;
}

void Runner::work(int commands_fd, int results_fd) {
  Fd commands(commands_fd), results(results_fd);
  MaildirWriter writer;
  std::string pending;
  unsigned long served = 0;
  for (;;) {
    // Wait for work, at most kWorkerIdle; EOF (the runner closed the pipe) ends the worker.
    pollfd p{commands.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kWorkerIdle).count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) ::_exit(0);  // idle: the runner sees our exit and forks anew when needed
    char buf[4096];
    ssize_t n = ::read(commands.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ::_exit(0);
    pending.append(buf, static_cast<size_t>(n));
    auto batch_started = Clock::now();
    size_t end;
    while ((end = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, end);
      pending.erase(0, end + 1);
      unsigned long seq = 0;
      int force = 0;
      char id[64] = {};
      if (std::sscanf(line.c_str(), "%lu %d %63s", &seq, &force, id) != 3) ::_exit(111);
      int code = entry_exit::kTrouble;
      if (Clock::now() - batch_started > kBatchBudget) {
        code = entry_exit::kNotStarted;
      } else {
        try {
          EntryContext ctx{config_, ::time(nullptr), force != 0};
          ctx.remote = [](const RemoteCall& call) { return run_deliver_remote(kRemoteProgram, call, kRemoteLimit); };
          ctx.inject = inject_via_chain;
          ctx.slots_path = config_.queue_dir + "/lock/remote";
          code = deliver_entry(config_.queue_dir, id, ctx, writer, log_);
        } catch (...) {
          code = entry_exit::kTrouble;  // out of memory or a bug: the entry stays queued
        }
      }
      // A few bytes into a pipe the runner drains: never short.
      if (!write_all(results.get(), fmt::format("{} {}\n", seq, code))) ::_exit(111);
      // Past its share, the worker leaves; what the runner sent meanwhile is not started.
      if (++served >= kWorkerEntries) ::_exit(0);
    }
  }
}

void Runner::read_results(pid_t pid) {
  auto it = children_.find(pid);
  if (it == children_.end()) return;
  Child& child = it->second;
  char buf[4096];
  ssize_t n = -1;
  while (child.results.valid() && (n = ::read(child.results.get(), buf, sizeof buf)) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) (void)child.results.close();
      break;
    }
    child.partial.append(buf, static_cast<size_t>(n));
  }
  if (n == 0) {  // it is leaving; reap() settles the rest
    (void)child.results.close();
    child.retiring = true;
  }
  size_t end;
  while ((end = child.partial.find('\n')) != std::string::npos) {
    unsigned long seq = 0;
    int code = -1;
    bool parsed = std::sscanf(child.partial.c_str(), "%lu %d", &seq, &code) == 2;
    child.partial.erase(0, end + 1);
    auto entry = child.in_flight.find(seq);
    if (!parsed || entry == child.in_flight.end()) continue;
    std::string id = std::move(entry->second);
    child.in_flight.erase(entry);
    running_.erase(id);
    finish(id, code, Clock::now());
  }
  if (child.retiring && child.in_flight.empty()) (void)child.commands.close();
}

void Runner::retire(pid_t pid) {
  auto it = children_.find(pid);
  if (it == children_.end()) return;
  it->second.retiring = true;
  if (it->second.in_flight.empty()) (void)it->second.commands.close();
}

void Runner::reap(Clock::time_point now) {
  int status = 0;
  pid_t pid;
  while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
    if (!children_.count(pid)) continue;
    read_results(pid);  // whatever it answered before it went
    Child child = std::move(children_[pid]);
    children_.erase(pid);
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (WIFSIGNALED(status)) log_.warn("worker {} killed by signal {}", pid, WTERMSIG(status));
    else if (!clean) log_.warn("worker {} exited {}", pid, WEXITSTATUS(status));
    // A worker that left on its own (idle, its share done) did not start what it had not read.
    for (auto& [seq, id] : child.in_flight) {
      running_.erase(id);
      finish(id, clean ? entry_exit::kNotStarted : -1, now);
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
        for (const auto& [pid, child] : children_) retire(pid);
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
  // Workers keep the configuration they were forked with: new ones take over.
  for (const auto& [pid, child] : children_) retire(pid);
}

int Runner::poll_timeout(Clock::time_point now) const {
  Clock::time_point wake = std::min(next_scan_, next_garbage_);
  bool can_start = children_.size() < config_.concurrency;
  for (const auto& [pid, child] : children_) can_start = can_start || child.idle();
  if (can_start) {
    for (const auto& id : queue_)
      if (!running_.count(id)) wake = std::min(wake, schedule_.due_at(id));
  }
  if (wake <= now) return 0;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count() + 1;
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

}  // namespace tikimail
