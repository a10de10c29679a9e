// deliver/runner.h: the long-running parent: wakes on the trigger fifo, a periodic scan and
// signals, forks children (at most control/concurrencylocal) that each work through a batch
// of due entries, and schedules retries from the results they report (deliver/entry.h).
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

// A child works through at most this many entries, and starts no further one of its batch
// after kBatchBudget: those go back to the runner, due at once. One entry per child when the
// queue is quiet; under load a fork per entry cost more than the entry's own work.
inline constexpr size_t kMaxBatch = 16;
inline constexpr std::chrono::milliseconds kBatchBudget{1000};

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
  void start_child(std::vector<std::string> ids, Clock::time_point now);
  void reap(Clock::time_point now);
  // Schedules entry `id` after its child reported `code` (entry_exit; -1: no report).
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
    std::vector<std::string> ids;  // its batch, in order
    Fd results;                    // "<index> <code>\n" a finished entry, from the child
  };
  std::map<pid_t, Child> children_;        // running children and their batches
  std::set<std::string> running_;          // the same entries, for lookups by id
  std::set<std::string> forced_;           // flushed: the next child tries every recipient
  bool flush_ = false;                     // SIGALRM or SIGHUP: flush at the next scan
  bool stopping_ = false;
  bool scan_now_ = true;
  Clock::time_point next_scan_, next_garbage_;
};

}  // namespace tikimail
