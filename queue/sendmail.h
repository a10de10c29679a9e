// queue/sendmail.h: one sendmail injection: read the message on stdin, decide the envelope,
// add the missing header fields, and hand it to the queue chain (queue/README.md, "sendmail").
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/status.h"
#include "queue/sendmail_args.h"

namespace tikimail {

// How long sendmail waits for the chain's answer once the message is written.

struct SendmailConfig {
  std::string me;                  // control/me, else the host name
  uint64_t databytes = 20971520;   // control/databytes
  std::vector<std::string> chain;  // control/queuechain: every whitespace-separated word
                                   // of every line, in order; default {"bin/queue"}
  // Reads the control files relative to the working directory (the prefix). A file that
  // exists but cannot be read, or a malformed databytes, is a temporary error.
  static Result<SendmailConfig> load();
};

// Who runs sendmail: getuid() and its login name from getpwuid() ("" when it has none).
struct Invoker {
  uid_t uid = 0;
  std::string login;
  static Invoker current();
};

// Injects one message read from `in_fd` and returns the sendmail exit code (sysexits.h,
// every code listed in queue/README.md). Every refusal is one "sendmail: fatal: ..." line on
// stderr through `log`; success prints nothing (cron mails whatever a job prints).
// Once reading has begun, a refusal reads the input on to its end first, so that the
// writer (a CGI, a cron job) gets our exit code instead of a broken pipe.
int run_sendmail(const SendmailOptions& opts, const SendmailConfig& config, const Invoker& invoker,
                 int in_fd, const Log& log);

}  // namespace tikimail
