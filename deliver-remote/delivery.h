// deliver-remote/delivery.h: one run of deliver-remote: its arguments, its control files, and the
// walk over the addresses of a domain until one host gives a final answer for every recipient.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "common/remote_result.h"
#include "deliver-remote/routes.h"
#include "deliver-remote/smtp_client.h"

namespace tikimail {

// One run tries no new address after this many seconds, and is ended by SIGALRM after
// kRunHardLimit (a session stuck within its deadlines: e.g. 100 slow RCPT replies). deliver,
// which cannot signal a set-uid deliver-remote, waits longer than both.
inline constexpr long kRunBudget = 1800;
inline constexpr unsigned kRunHardLimit = 3600;

// The control files of deliver-remote/README.md, read relative to the working directory.
struct RemoteConfig {
  std::string helo;                 // helohost, else me, else the host name
  DomainRules<Relay> routes;        // smtproutes
  DomainRules<TlsLevel> tls;        // tlsremote
  std::string ca_file;              // "control/tlsremoteca" when it exists, else "" (system CAs)
  long connect_timeout = 30;        // timeoutconnect, 1..300
  Timeouts timeouts;                // timeoutremote, 1..3600, replaces the reply deadlines
  // A malformed rule is skipped and described in *warnings; an unreadable file or a bad number
  // is an error.
  static Result<RemoteConfig> load(std::vector<std::string>* warnings);
};

// What the command line asks for.
struct Job {
  std::string domain;
  SmtpEnvelope envelope;  // SMTP forms; only the recipients that can be sent
  // One entry per recipient argument, in order: set when that recipient is decided before any
  // connection (a D result: its address, the sender or the domain cannot be sent); the unset
  // ones are envelope.rcpts, in the same order.
  std::vector<std::optional<RemoteResult>> decided;
  std::string msgid = "-";
  int message_fd = 0;
  uint64_t message_bytes = 0;  // -l: the message is the first message_bytes of message_fd
};

// An envelope address as stored ("user@example.test", unquoted) in SMTP form with the local
// part quoted where RFC 5321 needs it ("<\"a b\"@example.test>"); "" gives "<>" when
// allow_null. nullopt when it is not an address or breaks a length limit.
std::optional<std::string> smtp_path(std::string_view envelope_address, bool allow_null);

// "-l <bytes> <domain> <sender> <rcpt>..." (argv without the program name). An error only for
// a missing or malformed `-l <bytes>` (decimal digits) or a wrong count of arguments (usage).
// A recipient that cannot be sent (not an address, 8-bit, too long)
// is decided as D 5.1.3, every recipient as D 5.1.7 when the sender cannot be sent and as
// D 5.1.2 when the domain is not a domain name or an address literal: none of these can get
// better with time, and one bad address must not hold back the others of its call.
Result<Job> parse_job(const std::vector<std::string>& args);

// Delivers the message (the first job.message_bytes of job.message_fd) to every recipient: one
// result per recipient, in order. An error only when nothing could be decided (the message
// cannot be read, or the file ends before job.message_bytes).
Result<std::vector<RemoteResult>> deliver_job(const Job& job, const RemoteConfig& config, const Log& log);

}  // namespace tikimail
