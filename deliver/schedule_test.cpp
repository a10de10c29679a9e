// deliver/schedule_test.cpp: retry waits grow and stop at the cap.
#include "deliver/schedule.h"

#include <catch2/catch.hpp>

using namespace tikimail;
using std::chrono::seconds;

TEST_CASE("schedule: waits double from the base and stop at the cap") {
  CHECK(Schedule::delay(1, seconds(60), seconds(3600)) == seconds(60));
  CHECK(Schedule::delay(2, seconds(60), seconds(3600)) == seconds(120));
  CHECK(Schedule::delay(6, seconds(60), seconds(3600)) == seconds(1920));
  CHECK(Schedule::delay(7, seconds(60), seconds(3600)) == seconds(3600));
  CHECK(Schedule::delay(1000, seconds(60), seconds(3600)) == seconds(3600));
  CHECK(Schedule::delay(1, seconds(7200), seconds(3600)) == seconds(3600));
}

TEST_CASE("schedule: a new entry is due at once, a deferred one after its wait") {
  Schedule s(seconds(60), seconds(3600));
  auto t0 = Schedule::Clock::now();
  CHECK(s.due("a", t0));
  CHECK(s.defer("a", t0) == t0 + seconds(60));
  CHECK_FALSE(s.due("a", t0 + seconds(59)));
  CHECK(s.due("a", t0 + seconds(60)));
  CHECK(s.defer("a", t0 + seconds(60)) == t0 + seconds(180));
  CHECK(s.due("b", t0));
}

TEST_CASE("schedule: flush makes every entry due now and keeps the growth") {
  Schedule s(seconds(60), seconds(3600));
  auto t0 = Schedule::Clock::now();
  s.defer("a", t0);
  s.defer("a", t0);
  s.flush();
  CHECK(s.due("a", t0));
  CHECK(s.defer("a", t0) == t0 + seconds(240));
}

TEST_CASE("schedule: a busy entry waits without growing; forget and retain drop entries") {
  Schedule s(seconds(10), seconds(100));
  auto t0 = Schedule::Clock::now();
  s.retry_at("a", t0 + seconds(1));
  CHECK_FALSE(s.due("a", t0));
  CHECK(s.defer("a", t0) == t0 + seconds(10));
  s.defer("b", t0);
  s.defer("c", t0);
  s.forget("a");
  CHECK(s.due("a", t0));
  s.retain([](const std::string& id) { return id == "b"; });
  CHECK(s.size() == 1);
  CHECK(s.due("c", t0));
  CHECK_FALSE(s.due("b", t0));
}
