// deliver/runner.h: the long-running parent: wakes on the trigger fifo, a periodic scan and
// signals, hands due entries to worker children (at most control/concurrencylocal), and
// schedules retries from the results they report (deliver/entry.h).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/log.h"
#include "deliver/config.h"
#include "deliver/schedule.h"

namespace tikimail {

// A worker is a child that takes entries over a pipe and answers each, so that a busy queue
// pays no fork and exit per entry (they cost more than a local delivery's own work). It gets
// at most kMaxBatch entries at a time, only when idle, and starts no entry of a batch after
// kBatchBudget (those go back to the runner, due at once). It exits when the runner closes its
// pipe (reload, stop), after kWorkerIdle without work, or after kWorkerEntries entries.
inline constexpr size_t kMaxBatch = 16;
inline constexpr std::chrono::milliseconds kBatchBudget{1000};
inline constexpr std::chrono::seconds kWorkerIdle{5};
inline constexpr unsigned long kWorkerEntries = 1000;

// How `due` entries are split among `free` children: sizes in order, each at most kMaxBatch,
// as even as possible, and no more children than entries. Empty when either is 0.
std::vector<size_t> plan_batches(size_t due, size_t free);

class Runner {
 public:
  using Clock = std::chrono::steady_clock;

  // `log` must outlive the runner.
  Runner(DeliverConfig config, const Log& log);

  // Blocks SIGHUP, SIGALRM, SIGTERM, SIGINT and SIGCHLD and reads them from a signalfd (no
  // handler runs any code), and opens the fifo queue/trigger read-write and non-blocking, so
  // that poll never sees a hang-up when the last writer goes. Fails when either fails.
  Status open();

  // Serves until SIGTERM or SIGINT: then starts nothing new, waits for the running children
  // and returns 0.
  int run();

 private:
  void scan(Clock::time_point now);
  void start_children(Clock::time_point now);
  // Forks a worker and returns its pid; -1 (logged) when no pipe or process could be made.
  pid_t start_worker();
  // Sends `ids` to the idle worker `pid`; false when it cannot take them (gone).
  bool assign(pid_t pid, const std::vector<std::string>& ids);
  [[noreturn]] void work(int commands, int results);  // the worker's loop, in the child
  void read_results(pid_t pid);
  // No new work for this worker; its pipe closes once it has answered what it has.
  void retire(pid_t pid);
  void reap(Clock::time_point now);
  // Schedules entry `id` after its worker answered `code` (entry_exit; -1: no answer).
  void finish(const std::string& id, int code, Clock::time_point now);
  void read_signals(Clock::time_point now);
  void drain_trigger();
  void reload();
  // When the earliest unfinished recipient of `id` is due, from queue/info/<id>; false when
  // the file says nothing.
  bool next_try_from_info(const std::string& id, Clock::time_point now, Clock::time_point* due) const;
  // How long poll may sleep: until the next scan, garbage run or due entry.
  int poll_timeout(Clock::time_point now) const;

  DeliverConfig config_;
  const Log& log_;
  Fd signals_, trigger_;
  sigset_t old_mask_;                      // restored in each child
  Schedule schedule_;
  std::set<std::string> queue_;            // ids in todo/ at the last scan; sorted, oldest first
  struct Child {
    Fd commands;                                     // to it: "<seq> <force> <id>\n" an entry
    Fd results;                                      // from it: "<seq> <code>\n" an answer
    std::map<unsigned long, std::string> in_flight;  // sent and not answered, by seq
    unsigned long next_seq = 0;
    std::string partial;                             // an answer not yet whole
    bool retiring = false;                           // gets no new work
    bool idle() const { return !retiring && in_flight.empty(); }
  };
  std::map<pid_t, Child> children_;        // the workers
  std::set<std::string> running_;          // the entries in flight in any worker, by id
  std::set<std::string> forced_;           // flushed: the next try takes every recipient
  bool flush_ = false;                     // SIGALRM or SIGHUP: flush at the next scan
  bool stopping_ = false;
  bool scan_now_ = true;
  Clock::time_point next_scan_, next_garbage_;
};

}  // namespace tikimail
