// deliver-remote/mx.cpp: MX answers, the resolver call, and the address list.
#include "deliver-remote/mx.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include <algorithm>
#include <cstring>

#include "common/address.h"
#include "common/log.h"

namespace tikimail {

namespace {


}  // namespace

MxAnswer parse_mx_answer(std::span<const unsigned char> answer) {
  MxAnswer out;
  ns_msg msg;
  if (answer.size() > NS_MAXMSG || ns_initparse(answer.data(), static_cast<int>(answer.size()), &msg) != 0) {
    out.error = "malformed DNS answer";
    return out;
  }
  switch (ns_msg_getflag(msg, ns_f_rcode)) {
    case ns_r_noerror: break;
    case ns_r_nxdomain: out.kind = MxAnswer::Kind::kNotFound; return out;
    default: out.error = fmt::format("DNS error rcode {}", ns_msg_getflag(msg, ns_f_rcode)); return out;
  }
  size_t mx_records = 0, null_records = 0;
  int count = ns_msg_count(msg, ns_s_an);
  for (int i = 0; i < count; ++i) {
    ns_rr rr;
    if (ns_parserr(&msg, ns_s_an, i, &rr) != 0) {
      out.error = "malformed DNS answer record";
      return out;
    }
    if (ns_rr_type(rr) != ns_t_mx || ns_rr_class(rr) != ns_c_in) continue;  // CNAMEs on the way
    ++mx_records;
    const unsigned char* rdata = ns_rr_rdata(rr);
    if (ns_rr_rdlen(rr) < 3) continue;
    char name[NS_MAXDNAME];
    if (ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), rdata + 2, name, sizeof name) < 0) continue;
    std::string_view exchange = name;
    if (exchange == "." || exchange.empty()) {
      ++null_records;
      continue;
    }
    if (exchange.back() == '.') exchange.remove_suffix(1);
    if (!valid_domain(exchange)) continue;  // escaped bytes, IP-looking junk, overlong labels
    out.hosts.push_back(MxHost{ascii_lower(exchange), ns_get16(rdata)});
  }
  if (mx_records == 0) {
    out.kind = MxAnswer::Kind::kNoData;
    return out;
  }
  if (null_records == mx_records) {
    out.kind = MxAnswer::Kind::kNullMx;
    return out;
  }
  out.kind = MxAnswer::Kind::kHosts;
  std::stable_sort(out.hosts.begin(), out.hosts.end(),
                   [](const MxHost& a, const MxHost& b) { return a.preference < b.preference; });
  return out;
}

void shuffle_equal_preferences(std::vector<MxHost>* hosts, std::mt19937* rng) {
  auto begin = hosts->begin();
  while (begin != hosts->end()) {
    auto end = std::find_if(begin, hosts->end(),
                            [&](const MxHost& h) { return h.preference != begin->preference; });
    std::shuffle(begin, end, *rng);
    begin = end;
  }
}

MxAnswer query_mx(const std::string& domain) {
  MxAnswer out;
  struct __res_state state;
  std::memset(&state, 0, sizeof state);
  if (res_ninit(&state) != 0) {
    out.error = "cannot initialise the resolver";
    return out;
  }
  std::vector<unsigned char> buf(NS_MAXMSG);
  int n = res_nquery(&state, domain.c_str(), ns_c_in, ns_t_mx, buf.data(), static_cast<int>(buf.size()));
  int herr = state.res_h_errno;
  res_nclose(&state);
  if (n < 0) {
    switch (herr) {
      case HOST_NOT_FOUND: out.kind = MxAnswer::Kind::kNotFound; break;
      case NO_DATA: out.kind = MxAnswer::Kind::kNoData; break;
      case TRY_AGAIN: out.error = "DNS lookup timed out or the server failed"; break;
      default: out.error = fmt::format("DNS lookup failed: {}", hstrerror(herr)); break;
    }
    return out;
  }
  size_t len = std::min(static_cast<size_t>(n), buf.size());  // n may exceed a truncated buffer
  return parse_mx_answer(std::span<const unsigned char>(buf.data(), len));
}

std::string Target::label() const {
  return fmt::format("{}[{}]:{}", name, ip, port);
}

bool add_host_addresses(const std::string& host, bool literal, uint16_t port, std::vector<Target>* targets,
                        std::string* why) {
  if (!literal && literal_address(host)) {  // an MX or route name must be a name (RFC 5321 5.1)
    *why = "an IP address where a host name belongs";
    return false;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = literal ? AI_NUMERICHOST : 0;
  addrinfo* list = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (rc != 0) {
    *why = rc == EAI_NONAME ? "no address" : gai_strerror(rc);
    return false;
  }
  bool any = false;
  for (addrinfo* ai = list; ai != nullptr && targets->size() < kMaxAddresses; ai = ai->ai_next) {
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof(sockaddr_storage))
      continue;
    Target t;
    t.name = literal ? "" : host;
    t.port = port;
    std::memcpy(&t.addr, ai->ai_addr, ai->ai_addrlen);
    t.addr_len = ai->ai_addrlen;
    char text[INET6_ADDRSTRLEN] = {};
    if (ai->ai_family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&t.addr);
      sin->sin_port = htons(port);
      ::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&t.addr);
      sin6->sin6_port = htons(port);
      ::inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
    }
    t.ip = text;
    bool duplicate = std::any_of(targets->begin(), targets->end(),
                                 [&](const Target& o) { return o.ip == t.ip && o.port == t.port; });
    if (duplicate) continue;
    targets->push_back(std::move(t));
    any = true;
  }
  ::freeaddrinfo(list);
  if (!any) *why = "no usable address";
  return any;
}

Plan plan_from_mx(const std::string& domain, MxAnswer answer, std::mt19937* rng) {
  Plan plan;
  plan.how = "mx";
  switch (answer.kind) {
    case MxAnswer::Kind::kNullMx:
      plan.failure = own_result(RemoteResult::Kind::kPermanent, "5.1.10",
                                   fmt::format("domain {} does not accept mail (null MX)", domain));
      return plan;
    case MxAnswer::Kind::kNotFound:
      plan.failure = own_result(RemoteResult::Kind::kPermanent, "5.1.2", fmt::format("domain {} not found", domain));
      return plan;
    case MxAnswer::Kind::kTemporary:
      plan.failure = own_result(RemoteResult::Kind::kTemporary, "4.4.3",
                                   fmt::format("cannot find the mail hosts of {}: {}", domain, answer.error));
      return plan;
    case MxAnswer::Kind::kNoData:
      plan.how = "implicit-mx";
      answer.hosts = {MxHost{domain, 0}};  // RFC 5321 5.1: the domain itself, preference 0
      break;
    case MxAnswer::Kind::kHosts:
      break;
  }
  shuffle_equal_preferences(&answer.hosts, rng);
  if (answer.hosts.size() > kMaxMxHosts) answer.hosts.resize(kMaxMxHosts);
  std::string why = "no usable MX host name";
  bool no_address = false;  // the resolver said the name has no address (not: could not ask)
  for (const MxHost& host : answer.hosts) {
    if (plan.targets.size() >= kMaxAddresses) break;
    std::string host_why;
    if (!add_host_addresses(host.name, false, 25, &plan.targets, &host_why)) {
      why = fmt::format("{}: {}", host.name, host_why);
      no_address = host_why == "no address";
    }
  }
  // RFC 5321 5.1: a domain without MX whose own name has no address cannot receive mail.
  if (plan.targets.empty() && answer.kind == MxAnswer::Kind::kNoData && no_address)
    plan.failure = own_result(RemoteResult::Kind::kPermanent, "5.1.2",
                                 fmt::format("domain {} has no MX and no address", domain));
  else if (plan.targets.empty())
    plan.failure = own_result(RemoteResult::Kind::kTemporary, "4.4.3",
                                 fmt::format("no address for the mail hosts of {} ({})", domain, why));
  return plan;
}

namespace {

// True for a loopback, unspecified or IPv4-mapped loopback address, or one of `mine`.
bool own_address(const sockaddr_storage& addr, const std::vector<sockaddr_storage>& mine) {
  if (addr.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(addr);
    uint32_t ip = ntohl(a.sin_addr.s_addr);
    if ((ip >> 24) == 127 || ip == 0) return true;
    for (const auto& m : mine)
      if (m.ss_family == AF_INET && reinterpret_cast<const sockaddr_in&>(m).sin_addr.s_addr == a.sin_addr.s_addr)
        return true;
  } else if (addr.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(addr);
    if (IN6_IS_ADDR_LOOPBACK(&a.sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&a.sin6_addr) && (a.sin6_addr.s6_addr[12] == 127 || a.sin6_addr.s6_addr[12] == 0))
      return true;
    for (const auto& m : mine)
      if (m.ss_family == AF_INET6 &&
          std::memcmp(&reinterpret_cast<const sockaddr_in6&>(m).sin6_addr, &a.sin6_addr, sizeof a.sin6_addr) == 0)
        return true;
  }
  return false;
}

// Removes the addresses of this host from the plan (its interfaces, loopback); when none is
// left the mail would only come back to us: a permanent failure.
void drop_own_addresses(const std::string& domain, Plan* plan) {
  if (plan->targets.empty()) return;
  std::vector<sockaddr_storage> mine;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) == 0) {
    for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
      if (i->ifa_addr == nullptr) continue;
      sockaddr_storage ss{};
      if (i->ifa_addr->sa_family == AF_INET) std::memcpy(&ss, i->ifa_addr, sizeof(sockaddr_in));
      else if (i->ifa_addr->sa_family == AF_INET6) std::memcpy(&ss, i->ifa_addr, sizeof(sockaddr_in6));
      else continue;
      mine.push_back(ss);
    }
    ::freeifaddrs(list);
  }
  std::string dropped;
  std::erase_if(plan->targets, [&](const Target& t) {
    if (!own_address(t.addr, mine)) return false;
    if (dropped.empty()) dropped = t.ip;
    return true;
  });
  if (plan->targets.empty())
    plan->failure = own_result(RemoteResult::Kind::kPermanent, "5.4.6",
                                  fmt::format("mail for {} loops back to this host ({})", domain, dropped));
}

}  // namespace

Plan plan_delivery(const std::string& domain, const DomainRules<Relay>& routes) {
  const Relay* route = routes.find(domain);
  if (route != nullptr && !route->host.empty()) {
    Plan plan;
    plan.how = "route";
    std::string why;
    if (!add_host_addresses(route->host, route->literal, route->port, &plan.targets, &why))
      plan.failure = own_result(RemoteResult::Kind::kTemporary, "4.4.3",
                                   fmt::format("no address for the route host {} of {} ({})", route->host, domain, why));
    return plan;
  }
  if (!domain.empty() && domain.front() == '[') {
    Plan plan;
    plan.how = "literal";
    std::string why = "not an IP address";
    auto ip = literal_address(std::string_view(domain).substr(1, domain.size() - 2));
    if (!ip || !add_host_addresses(*ip, true, 25, &plan.targets, &why))
      plan.failure = own_result(RemoteResult::Kind::kPermanent, "5.1.2",
                                   fmt::format("bad address literal {} ({})", domain, why));
    drop_own_addresses(domain, &plan);
    return plan;
  }
  std::random_device seed;
  std::mt19937 rng(seed());
  // An MX or a literal pointing at this host would hand the mail back to our own smtpd
  // (which takes it from 127.0.0.1 as a relay client): a loop. Only smtproutes, which the
  // administrator writes, may name this host.
  Plan plan = plan_from_mx(domain, query_mx(domain), &rng);
  drop_own_addresses(domain, &plan);
  return plan;
}

}  // namespace tikimail
