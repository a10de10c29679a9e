// deliver/config.h: the runner's control files (deliver/README.md), read at start and on SIGHUP.
#pragma once

#include <string>

#include "common/status.h"

namespace tikimail {

struct DeliverConfig {
  unsigned concurrency = 10;     // control/concurrencylocal: children at once (at least 1)
  unsigned queuescan = 30;       // control/queuescan: seconds between scans of todo/ (at least 1)
  unsigned retry_base = 60;      // control/retrybase: seconds before the first retry
  unsigned retry_max = 3600;     // control/retrymax: the longest wait between retries
  std::string queue_dir = "queue";

  // Reads control/ relative to the working directory; a missing file is the default above,
  // a malformed or zero number is an error (not the default).
  static Result<DeliverConfig> load();
};

}  // namespace tikimail
