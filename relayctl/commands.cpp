// relayctl/commands.cpp: parsing relayctl's arguments and carrying out one command.
#include "relayctl/commands.h"

#include "common/log.h"
#include "relayctl/relay_db.h"

namespace tikimail {

namespace {

// The verbs and how many words may follow each: allow IP [LOGIN], check IP, list, purge.
struct VerbSpec {
  std::string_view name;
  RelayVerb verb;
  size_t min_args, max_args;
};
constexpr VerbSpec kVerbs[] = {
    {"allow", RelayVerb::kAllow, 1, 2},
    {"check", RelayVerb::kCheck, 1, 1},
    {"list", RelayVerb::kList, 0, 0},
    {"purge", RelayVerb::kPurge, 0, 0},
};

}  // namespace

Result<RelayRequest> parse_relay_request(const std::vector<std::string>& args) {
  auto usage = [] { return Status::permanent(std::string(kRelayctlUsage)); };
  if (args.empty()) return usage();
  const VerbSpec* spec = nullptr;
  for (const auto& v : kVerbs)
    if (args[0] == v.name) spec = &v;
  if (spec == nullptr || args.size() - 1 < spec->min_args || args.size() - 1 > spec->max_args) return usage();
  RelayRequest request;
  request.verb = spec->verb;
  if (args.size() >= 2) {
    auto ip = canonical_ip(args[1]);
    if (!ip) return Status::permanent(fmt::format("not an IP address: {}", log_safe(args[1])));
    request.ip = *ip;
  }
  if (args.size() == 3) request.login = args[2];
  return request;
}

Result<RelayOutcome> run_relay_request(const RelayRequest& request, time_t now) {
  RelayDb db(kRelayDir);
  RelayOutcome outcome;
  switch (request.verb) {
    case RelayVerb::kAllow: {
      auto window = read_relay_window(kRelayWindowPath);
      if (!window) return window.error();
      time_t expiry = now + static_cast<time_t>(*window);
      if (Status s = db.allow(request.ip, request.login, now, expiry); !s) return s;
      outcome.event = fmt::format("allow ip={} login={} expiry={}", request.ip,
                                  request.login.empty() ? "-" : log_safe(request.login), expiry);
      return outcome;
    }
    case RelayVerb::kCheck: {
      auto live = db.check(request.ip, now);
      if (!live) return live.error();
      outcome.exit_code = *live ? relayctl_exit::kOk : relayctl_exit::kNotAllowed;
      return outcome;
    }
    case RelayVerb::kList: {
      auto entries = db.list();
      if (!entries) return entries.error();
      for (const auto& e : *entries)
        if (e.live(now))
          outcome.out += fmt::format("{} {} {} {}\n", e.ip, static_cast<long long>(now - e.since),
                                     static_cast<long long>(e.expiry - now), e.login);
      return outcome;
    }
    case RelayVerb::kPurge: {
      auto removed = db.purge(now);
      if (!removed) return removed.error();
      outcome.event = fmt::format("purge removed={}", *removed);
      return outcome;
    }
  }
  return Status::permanent("unknown command");
}

int relayctl_exit_code(const Status& status) {
  return status.permanent_failure() ? relayctl_exit::kPermanent : relayctl_exit::kTemporary;
}

}  // namespace tikimail
