// deliver/config.cpp: loading the runner's control files.
#include "deliver/config.h"

#include <charconv>

#include "common/address.h"
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

// control/concurrencyremote: a number (the global limit), then "domain:N" lines and ":N".
Status load_remote_limits(DeliverConfig* c) {
  const char* path = "control/concurrencyremote";
  auto lines = read_control_lines(path);
  if (!lines) return lines.error();
  auto number = [&](std::string_view text, unsigned max) -> Result<unsigned> {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > max)
      return Status::temporary(fmt::format("{}: \"{}\" is not a number between 1 and {}", path, text, max));
    return value;
  };
  for (const std::string& line : *lines) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) {
      auto n = number(line, 1000);
      if (!n) return n.error();
      c->remote_global = *n;
      continue;
    }
    auto n = number(std::string_view(line).substr(colon + 1), 1000);
    if (!n) return n.error();
    if (colon == 0) c->remote_domain = *n;
    else c->remote_domains[ascii_lower(line.substr(0, colon))] = *n;
  }
  return Status::ok();
}

}  // namespace

unsigned DeliverConfig::domain_limit(std::string_view domain) const {
  auto it = remote_domains.find(domain);
  return it == remote_domains.end() ? remote_domain : it->second;
}

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
  auto lifetime = positive("queuelifetime", c.queuelifetime, 365 * 86400);
  if (!lifetime) return lifetime.error();
  auto warnafter = read_control_uint("control/warnafter", 0);
  if (!warnafter) return warnafter.error();
  if (*warnafter > 365 * 86400) return Status::temporary("control/warnafter: more than a year");
  if (Status s = load_remote_limits(&c); !s) return s;
  c.queuelifetime = *lifetime;
  c.warnafter = static_cast<unsigned>(*warnafter);
  c.concurrency = *concurrency;
  c.queuescan = *queuescan;
  c.retry_base = *base;
  c.retry_max = *max;
  return c;
}

}  // namespace tikimail
