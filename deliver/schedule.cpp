// deliver/schedule.cpp: growing retry waits.
#include "deliver/schedule.h"

namespace tikimail {

Schedule::Seconds Schedule::delay(unsigned attempt, Seconds base, Seconds cap) {
  if (attempt == 0) return Seconds(0);
  Seconds wait = base;
  for (unsigned i = 1; i < attempt && wait < cap; ++i) wait *= 2;  // stops before overflowing
  return wait < cap ? wait : cap;
}

Schedule::Clock::time_point Schedule::defer(const std::string& id, Clock::time_point now) {
  Entry& e = entries_[id];
  ++e.attempts;
  e.due = now + delay(e.attempts, base_, cap_);
  return e.due;
}

void Schedule::retry_at(const std::string& id, Clock::time_point when) {
  entries_[id].due = when;
}

bool Schedule::due(const std::string& id, Clock::time_point now) const {
  return due_at(id) <= now;
}

void Schedule::flush() {
  for (auto& [id, e] : entries_) e.due = Clock::time_point::min();
}

Schedule::Clock::time_point Schedule::due_at(const std::string& id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? Clock::time_point::min() : it->second.due;
}

}  // namespace tikimail
