// deliver/config.cpp: loading the runner's control files.
#include "deliver/config.h"

#include "common/control.h"

namespace tikimail {

namespace {

// A positive number of at most `max` from control/<name>, `fallback` when the file is missing.
Result<unsigned> positive(const char* name, unsigned fallback, unsigned max) {
  std::string path = std::string("control/") + name;
  auto value = read_control_uint(path, fallback);
  if (!value) return value.error();
  if (*value == 0 || *value > max)
    return Status::temporary(fmt::format("{}: must be between 1 and {}", path, max));
  return static_cast<unsigned>(*value);
}

}  // namespace

Result<DeliverConfig> DeliverConfig::load() {
  DeliverConfig c;
  auto concurrency = positive("concurrencylocal", c.concurrency, 1000);
  if (!concurrency) return concurrency.error();
  auto queuescan = positive("queuescan", c.queuescan, 86400);
  if (!queuescan) return queuescan.error();
  auto base = positive("retrybase", c.retry_base, 86400);
  if (!base) return base.error();
  auto max = positive("retrymax", c.retry_max, 7 * 86400);
  if (!max) return max.error();
  c.concurrency = *concurrency;
  c.queuescan = *queuescan;
  c.retry_base = *base;
  c.retry_max = *max;
  return c;
}

}  // namespace tikimail
