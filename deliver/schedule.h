// deliver/schedule.h: the retry schedule, kept in memory by the runner: an entry that left a
// recipient undone waits base, 2*base, 4*base ... at most cap before its next try. A restart
// forgets the schedule, so every entry is tried at once.
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace tikimail {

class Schedule {
 public:
  using Clock = std::chrono::steady_clock;
  using Seconds = std::chrono::seconds;

  Schedule(Seconds base, Seconds cap) : base_(base), cap_(cap) {}
  // New limits (control files reread); waits already computed keep their time.
  void set_limits(Seconds base, Seconds cap) { base_ = base; cap_ = cap; }

  // The wait before retry number `attempt` (1 for the first): base * 2^(attempt-1), at most cap.
  static Seconds delay(unsigned attempt, Seconds base, Seconds cap);

  // `id` was tried at `now` and left work undone: it is due again after the next, longer wait.
  // Returns when.
  Clock::time_point defer(const std::string& id, Clock::time_point now);
  // `id` could not be tried (another process holds it): due again at `when`, same wait count.
  void retry_at(const std::string& id, Clock::time_point when);
  // `id` is finished or gone.
  void forget(const std::string& id) { entries_.erase(id); }
  // Forgets every entry for which keep(id) is false (entries gone from todo/).
  template <typename Keep>
  void retain(Keep keep) {
    std::erase_if(entries_, [&](const auto& e) { return !keep(e.first); });
  }
  // True when `id` may be tried at `now`: it was never deferred, or its wait is over.
  bool due(const std::string& id, Clock::time_point now) const;
  // Every deferred entry becomes due now (SIGHUP, SIGALRM); the wait counts are kept.
  void flush();
  // When `id` is due: time_point::min() when it never waited.
  Clock::time_point due_at(const std::string& id) const;
  size_t size() const { return entries_.size(); }
  bool known(const std::string& id) const { return entries_.count(id) > 0; }

 private:
  struct Entry {
    unsigned attempts = 0;
    Clock::time_point due;
  };
  Seconds base_, cap_;
  std::map<std::string, Entry> entries_;
};

}  // namespace tikimail
