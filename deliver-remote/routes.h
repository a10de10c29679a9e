// deliver-remote/routes.h: control/smtproutes (where to send a domain's mail instead of its MX)
// and control/tlsremote (how much TLS to demand), both keyed by the same domain patterns.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tikimail {

// Rules keyed by a domain pattern: "example.net" matches that domain exactly; ".example.net"
// any subdomain of it (not example.net itself); "" every domain. The most specific rule wins:
// the exact one, then the longest matching suffix, then the empty one. For a pattern given
// twice, the first line counts. Patterns and domains are lowercase.
template <typename T>
class DomainRules {
 public:
  void add(std::string pattern, T value) {
    for (const auto& [p, v] : rules_)
      if (p == pattern) return;
    rules_.emplace_back(std::move(pattern), std::move(value));
  }
  const T* find(std::string_view domain) const {
    const std::pair<std::string, T>* best = nullptr;
    for (const auto& rule : rules_) {
      const std::string& p = rule.first;
      if (p == domain) return &rule.second;
      bool suffix = !p.empty() && p[0] == '.' && domain.size() > p.size() &&
                    domain.substr(domain.size() - p.size()) == p;
      if (suffix && (best == nullptr || best->first.size() < p.size())) best = &rule;
    }
    if (best != nullptr) return &best->second;
    for (const auto& rule : rules_)
      if (rule.first.empty()) return &rule.second;
    return nullptr;
  }
  size_t size() const { return rules_.size(); }

 private:
  std::vector<std::pair<std::string, T>> rules_;
};

// Where a route sends the mail. An empty host means "no route: use DNS" (an exception to a
// default route).
struct Relay {
  std::string host;      // a host name, or the address of a literal without its brackets
  bool literal = false;  // host is an IP address ("192.0.2.1", "2001:db8::1")
  uint16_t port = 25;
};

// control/tlsremote levels (deliver-remote/README.md).
enum class TlsLevel { kNone, kMay, kEncrypt, kVerify };
std::string_view tls_level_name(TlsLevel level);

// A domain pattern as written in a control file ("", ".example.net", "example.net",
// "[192.0.2.1]"), lowercased; nullopt when it is not one.
std::optional<std::string> parse_domain_pattern(std::string_view text);

// One smtproutes line "domain:host[:port]", "domain:[IPv4]:port", "domain:[IPv6]",
// "domain:" (no route); nullopt when malformed.
std::optional<std::pair<std::string, Relay>> parse_route_line(std::string_view line);
// One tlsremote line "domain:level"; nullopt when malformed.
std::optional<std::pair<std::string, TlsLevel>> parse_tls_line(std::string_view line);

// The rules of a control file; a missing file has none. A malformed line is skipped and
// described in *warnings. Only a file that cannot be read is an error.
Result<DomainRules<Relay>> load_smtproutes(const std::filesystem::path& path, std::vector<std::string>* warnings);
Result<DomainRules<TlsLevel>> load_tlsremote(const std::filesystem::path& path, std::vector<std::string>* warnings);

// An IP address in the text of a literal: "192.0.2.1", "IPv6:2001:db8::1" or "2001:db8::1",
// returned without prefix; nullopt when it is none.
std::optional<std::string> literal_address(std::string_view inner);

}  // namespace tikimail
