// deliver-remote/mx.h: where a domain's mail goes (RFC 5321 section 5.1): a route of
// control/smtproutes, an address literal, or the domain's MX records (null MX: RFC 7505), each
// host resolved to at most kMaxAddresses addresses in the order they are tried.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "common/remote_result.h"
#include "deliver-remote/routes.h"

namespace tikimail {

inline constexpr size_t kMaxMxHosts = 10;    // MX hosts looked at, best first
inline constexpr size_t kMaxAddresses = 20;  // addresses tried, over all hosts

struct MxHost {
  std::string name;  // lowercase, without the final dot
  unsigned preference = 0;
};

// What an MX query said.
struct MxAnswer {
  enum class Kind {
    kHosts,      // MX records (hosts may still be empty when no exchange was a usable name)
    kNullMx,     // every MX record is "." (RFC 7505): the domain takes no mail
    kNoData,     // the name exists and has no MX: the implicit MX is the domain itself
    kNotFound,   // NXDOMAIN
    kTemporary,  // the resolver failed or the answer was unreadable
  };
  Kind kind = Kind::kTemporary;
  std::vector<MxHost> hosts;  // kHosts: sorted by preference; equal ones in answer order
  std::string error;          // kTemporary: why
};

// Parses a DNS answer in wire format (the bytes res_nquery returns) to an MX query. MX records
// whose exchange is not a host name are dropped; a "." among other exchanges is ignored.
MxAnswer parse_mx_answer(std::span<const unsigned char> answer);

// Shuffles the hosts of equal preference among themselves (RFC 5321 5.1), keeping the order of
// the preferences.
void shuffle_equal_preferences(std::vector<MxHost>* hosts, std::mt19937* rng);

// Asks the system resolver (res_nquery, class IN, type MX); the resolver's own timeouts and
// retries (resolv.conf) bound the wait.
MxAnswer query_mx(const std::string& domain);

// One address to connect to.
struct Target {
  std::string name;      // the host name for SNI and certificate checks; "" for an address literal
  std::string ip;        // numeric form, for logs and results
  uint16_t port = 25;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  // "mx.example.net[192.0.2.1]:25", or "[192.0.2.1]:25" for a literal.
  std::string label() const;
};

// The addresses to try, or (when there are none) the failure every recipient gets.
struct Plan {
  std::vector<Target> targets;
  RemoteResult failure;
  std::string how;  // "route", "literal", "mx", "implicit-mx": for the log
};

// Adds the addresses of `host` (a name or an IP address) at `port` to *targets (getaddrinfo,
// AF_UNSPEC, stream), skipping duplicates and stopping at kMaxAddresses. False when the name
// has no address; *why says why.
bool add_host_addresses(const std::string& host, bool literal, uint16_t port, std::vector<Target>* targets,
                        std::string* why);

// The plan for `domain` from an MX answer (the resolution of its hosts included): the pure part
// of plan_delivery, apart for tests.
Plan plan_from_mx(const std::string& domain, MxAnswer answer, std::mt19937* rng);

// The whole routing decision: smtproutes first (a route host is the only MX), then an address
// literal (connect to it directly), then DNS.
Plan plan_delivery(const std::string& domain, const DomainRules<Relay>& routes);

}  // namespace tikimail
