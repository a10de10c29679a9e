// deliver-remote/delivery.cpp: arguments, control files, and the address walk.
#include "deliver-remote/delivery.h"

#include <unistd.h>

#include <charconv>
#include <span>

#include "common/address.h"
#include "common/control.h"

namespace tikimail {

namespace {

Result<long> read_seconds(const char* path, long fallback, long max) {
  auto value = read_control_uint(path, static_cast<uint64_t>(fallback));
  if (!value) return value.error();
  if (*value < 1 || *value > static_cast<uint64_t>(max))
    return Status::temporary(fmt::format("{}: {} is not between 1 and {}", path, *value, max));
  return static_cast<long>(*value);
}

bool printable_word(std::string_view s) {
  if (s.empty() || s.size() > kMaxDomain) return false;
  for (char c : s)
    if (c <= ' ' || c > '~') return false;
  return true;
}


}  // namespace

Result<RemoteConfig> RemoteConfig::load(std::vector<std::string>* warnings) {
  RemoteConfig config;
  auto helo = read_control_string("control/helohost", "");
  if (!helo) return helo.error();
  config.helo = helo->empty() ? local_hostname() : *helo;
  if (!printable_word(config.helo))
    return Status::temporary("control/helohost or control/me: not a host name: " + log_safe(config.helo));
  auto routes = load_smtproutes("control/smtproutes", warnings);
  if (!routes) return routes.error();
  config.routes = std::move(*routes);
  auto tls = load_tlsremote("control/tlsremote", warnings);
  if (!tls) return tls.error();
  config.tls = std::move(*tls);
  if (::access("control/tlsremoteca", F_OK) == 0) config.ca_file = "control/tlsremoteca";
  auto connect = read_seconds("control/timeoutconnect", 30, 300);
  if (!connect) return connect.error();
  config.connect_timeout = *connect;
  if (::access("control/timeoutremote", F_OK) == 0) {
    auto remote = read_seconds("control/timeoutremote", 300, 3600);
    if (!remote) return remote.error();
    config.timeouts.replace(*remote);
  }
  return config;
}

std::optional<std::string> smtp_path(std::string_view text, bool allow_null) {
  if (text.empty()) return allow_null ? std::optional<std::string>("<>") : std::nullopt;
  auto [local, domain] = split_address(text);
  if (local.empty() || local.size() > kMaxLocalPart || domain.empty() || domain.size() > kMaxDomain)
    return std::nullopt;
  for (char c : local)
    if (c < ' ' || c > '~') return std::nullopt;  // printable ASCII; quoting covers the rest
  Address address;
  address.local = std::string(local);
  if (domain.front() == '[') {
    auto pattern = parse_domain_pattern(domain);
    if (!pattern) return std::nullopt;
    address.domain = *pattern;
    address.literal = true;
  } else {
    if (!valid_domain(domain)) return std::nullopt;
    address.domain = ascii_lower(domain);
  }
  std::string path = address.smtp();
  if (path.size() > kMaxPath) return std::nullopt;
  return path;
}

Result<Job> parse_job(const std::vector<std::string>& argv) {
  constexpr std::string_view kUsage = "usage: deliver-remote -l bytes domain sender rcpt...";
  // -l first: fd 0 is the queue entry file, and only its first `bytes` are the message.
  if (argv.size() < 2 || argv[0] != "-l") return Status::permanent(std::string(kUsage));
  uint64_t bytes = 0;
  const std::string& number = argv[1];
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), bytes);
  if (number.empty() || ec != std::errc() || end != number.data() + number.size())
    return Status::permanent(fmt::format("-l {}: not a byte count; {}", printable(number, 30), kUsage));
  std::span<const std::string> args(argv.begin() + 2, argv.end());
  if (args.size() < 3) return Status::permanent(std::string(kUsage));
  if (args.size() - 2 > kMaxRemoteRcpts)
    return Status::permanent(fmt::format("more than {} recipients", kMaxRemoteRcpts));
  Job job;
  job.message_bytes = bytes;
  const size_t n = args.size() - 2;
  job.decided.assign(n, std::nullopt);
  const std::string& domain = args[0];
  bool literal = !domain.empty() && domain.front() == '[' && parse_domain_pattern(domain).has_value();
  if (domain != ascii_lower(domain) || (!literal && !valid_domain(domain))) {
    job.decided.assign(n, own_result(RemoteResult::Kind::kPermanent, "5.1.2",
                                        "cannot send to the domain " + printable(domain, 300) +
                                            ": not a domain name or an address literal"));
    return job;
  }
  job.domain = domain;
  auto sender = smtp_path(args[1], true);
  if (!sender) {
    job.decided.assign(n, own_result(RemoteResult::Kind::kPermanent, "5.1.7",
                                        "cannot send from <" + printable(args[1], 300) +
                                            ">: not an address SMTP can carry"));
    return job;
  }
  job.envelope.sender = *sender;
  for (size_t i = 0; i < n; ++i) {
    auto rcpt = smtp_path(args[i + 2], false);
    if (!rcpt)
      job.decided[i] = own_result(RemoteResult::Kind::kPermanent, "5.1.3",
                                     "cannot send to <" + printable(args[i + 2], 300) +
                                         ">: not an address SMTP can carry");
    else
      job.envelope.rcpts.push_back(*rcpt);
  }
  return job;
}

namespace {

// The results of the recipients decided before connecting, with those of the session (one
// for each of job.envelope.rcpts, in order) in their places.
std::vector<RemoteResult> merge_results(const Job& job, std::vector<RemoteResult> sent) {
  std::vector<RemoteResult> out;
  out.reserve(job.decided.size());
  size_t k = 0;
  for (const auto& d : job.decided) out.push_back(d ? *d : std::move(sent.at(k++)));
  return out;
}

// deliver_job for job.envelope.rcpts: one result for each, in order.
Result<std::vector<RemoteResult>> deliver_sendable(const Job& job, const RemoteConfig& config, const Log& log) {
  const size_t n = job.envelope.rcpts.size();
  auto info = scan_message(job.message_fd, job.message_bytes);
  if (!info) return info.error();
  MessageSource message{job.message_fd, job.message_bytes, *info};

  Plan plan = plan_delivery(job.domain, config.routes);
  if (plan.targets.empty()) return std::vector<RemoteResult>(n, plan.failure);

  const TlsLevel* rule = config.tls.find(job.domain);
  TlsLevel level = rule != nullptr ? *rule : TlsLevel::kMay;
  ClientCtx ctx;
  if (level != TlsLevel::kNone) {
    auto made = make_client_context(level == TlsLevel::kVerify, config.ca_file);
    if (made) {
      ctx = std::move(*made);
    } else if (level == TlsLevel::kMay) {
      log.warn("{} no TLS client context: {}: sending without TLS", job.msgid, made.error().message());
    } else {
      return std::vector<RemoteResult>(
          n, own_result(RemoteResult::Kind::kTemporary, "4.7.5",
                           fmt::format("TLS is required ({}) but unavailable: {}", tls_level_name(level),
                                       made.error().message())));
    }
  }
  SessionConfig session{config.helo, level, ctx.get(), config.timeouts, job.msgid};

  RemoteResult last = own_result(RemoteResult::Kind::kTemporary, "4.4.1", "no address to try");
  // Each address is bounded by its own deadlines; the run as a whole by kRunBudget: once it
  // is spent no further address is tried (main's alarm is the hard stop behind it).
  const Deadline budget = Deadline::after_seconds(kRunBudget);
  for (const Target& target : plan.targets) {
    if (budget.passed()) {
      log.info("{} try stopped: no time left for host={} (budget {}s)", job.msgid, target.label(), kRunBudget);
      break;
    }
    for (int attempt = 0; attempt < 2; ++attempt) {  // the second: plaintext after a failed handshake
      auto fd = connect_to(target, Deadline::after_seconds(config.connect_timeout));
      if (!fd) {
        last = own_result(RemoteResult::Kind::kTemporary, "4.4.1", fd.error().message());
        log.info("{} try failed route={} reason=\"{}\"", job.msgid, plan.how, log_safe(last.text));
        break;
      }
      Connection conn(std::move(*fd));
      HostOutcome out = run_smtp(conn, target, job.envelope, message, session, log, attempt == 0);
      if (out.next == HostOutcome::Next::kFinal) return std::move(out.results);
      last = std::move(out.failure);
      if (out.next == HostOutcome::Next::kRetryWithoutTls) continue;
      log.info("{} try failed host={} route={} reason=\"{}\"", job.msgid, target.label(), plan.how,
               log_safe(last.text));
      break;
    }
  }
  return std::vector<RemoteResult>(n, last);
}

}  // namespace

Result<std::vector<RemoteResult>> deliver_job(const Job& job, const RemoteConfig& config, const Log& log) {
  if (job.envelope.rcpts.empty()) return merge_results(job, {});
  auto sent = deliver_sendable(job, config, log);
  if (!sent) return sent.error();
  return merge_results(job, std::move(*sent));
}

}  // namespace tikimail
