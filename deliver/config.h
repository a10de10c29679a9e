// deliver/config.h: the runner's control files (deliver/README.md), read at start and on SIGHUP.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tikimail {

struct DeliverConfig {
  unsigned concurrency = 10;     // control/concurrencylocal: children at once (at least 1)
  unsigned queuescan = 30;       // control/queuescan: seconds between scans of todo/ (at least 1)
  unsigned retry_base = 60;      // control/retrybase: seconds before the first retry
  unsigned retry_max = 3600;     // control/retrymax: the longest wait between retries
  unsigned queuelifetime = 604800;  // control/queuelifetime: seconds before a failing recipient bounces
  unsigned warnafter = 0;        // control/warnafter: seconds before a delay notice; 0 none
  unsigned remote_global = 20;   // control/concurrencyremote, first line: connections at once
  unsigned remote_domain = 5;    // its line ":N": connections to one domain at once
  std::map<std::string, unsigned, std::less<>> remote_domains;  // its lines "domain:N"
  std::string queue_dir = "queue";

  // The per-domain limit for `domain` (lowercase).
  unsigned domain_limit(std::string_view domain) const;

  // Reads control/ relative to the working directory; a missing file is the default above,
  // a malformed or zero number is an error (not the default).
  static Result<DeliverConfig> load();
};

}  // namespace tikimail
