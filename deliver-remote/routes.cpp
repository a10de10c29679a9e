// deliver-remote/routes.cpp: parsing control/smtproutes and control/tlsremote.
#include "deliver-remote/routes.h"

#include <arpa/inet.h>

#include <charconv>

#include "common/address.h"
#include "common/control.h"
#include "common/log.h"

namespace tikimail {

std::string_view tls_level_name(TlsLevel level) {
  switch (level) {
    case TlsLevel::kNone: return "none";
    case TlsLevel::kMay: return "may";
    case TlsLevel::kEncrypt: return "encrypt";
    case TlsLevel::kVerify: return "verify";
  }
  return "may";
}

std::optional<std::string> literal_address(std::string_view inner) {
  if (inner.size() > 5 && ascii_lower(inner.substr(0, 5)) == "ipv6:") inner.remove_prefix(5);
  if (inner.empty() || inner.size() > 45) return std::nullopt;
  std::string text(inner);
  unsigned char buf[16];
  if (::inet_pton(AF_INET, text.c_str(), buf) == 1 || ::inet_pton(AF_INET6, text.c_str(), buf) == 1)
    return ascii_lower(text);
  return std::nullopt;
}

std::optional<std::string> parse_domain_pattern(std::string_view text) {
  if (text.empty()) return std::string();
  if (text.front() == '[') {
    if (text.back() != ']' || !literal_address(text.substr(1, text.size() - 2))) return std::nullopt;
    return ascii_lower(text);
  }
  std::string_view name = text.front() == '.' ? text.substr(1) : text;
  if (name.size() > kMaxDomain || !valid_domain(name)) return std::nullopt;
  return ascii_lower(text);
}

// Splits "pattern:rest" at the colon that ends the pattern (after a literal's ']').
static std::optional<std::pair<std::string_view, std::string_view>> split_pattern(std::string_view line) {
  size_t colon;
  if (!line.empty() && line.front() == '[') {
    size_t close = line.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    colon = close + 1;
    if (colon >= line.size() || line[colon] != ':') return std::nullopt;
  } else {
    colon = line.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
  }
  return std::make_pair(line.substr(0, colon), line.substr(colon + 1));
}

static bool parse_port(std::string_view text, uint16_t* port) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

std::optional<std::pair<std::string, Relay>> parse_route_line(std::string_view line) {
  auto split = split_pattern(line);
  if (!split) return std::nullopt;
  auto pattern = parse_domain_pattern(split->first);
  if (!pattern) return std::nullopt;
  std::string_view rest = split->second;
  Relay relay;
  if (rest.empty()) return std::make_pair(*pattern, relay);  // no route: DNS
  std::string_view port;
  if (rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    auto address = literal_address(rest.substr(1, close - 1));
    if (!address) return std::nullopt;
    relay.host = *address;
    relay.literal = true;
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
  } else {
    size_t colon = rest.find(':');
    std::string_view host = rest.substr(0, colon);
    if (auto address = literal_address(host); address && host.find(':') == std::string_view::npos) {
      relay.host = *address;  // a bare IPv4 address, taken as the literal [IPv4]
      relay.literal = true;
    } else if (host.size() > kMaxDomain || !valid_domain(host)) {
      return std::nullopt;
    } else {
      relay.host = ascii_lower(host);
    }
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) return std::nullopt;
    }
  }
  if (!port.empty() && !parse_port(port, &relay.port)) return std::nullopt;
  return std::make_pair(*pattern, relay);
}

std::optional<std::pair<std::string, TlsLevel>> parse_tls_line(std::string_view line) {
  size_t colon = line.rfind(':');  // a level holds no colon; an IPv6 literal may
  if (colon == std::string_view::npos) return std::nullopt;
  auto pattern = parse_domain_pattern(line.substr(0, colon));
  if (!pattern) return std::nullopt;
  std::string level = ascii_lower(line.substr(colon + 1));
  TlsLevel value;
  if (level == "none") value = TlsLevel::kNone;
  else if (level == "may") value = TlsLevel::kMay;
  else if (level == "encrypt") value = TlsLevel::kEncrypt;
  else if (level == "verify") value = TlsLevel::kVerify;
  else return std::nullopt;
  return std::make_pair(*pattern, value);
}

template <typename T, typename Parse>
static Result<DomainRules<T>> load_rules(const std::filesystem::path& path, Parse parse,
                                         std::vector<std::string>* warnings) {
  auto lines = read_control_lines(path);
  if (!lines) return lines.error();
  DomainRules<T> rules;
  for (const std::string& line : *lines) {
    auto rule = parse(line);
    if (!rule) {
      warnings->push_back(fmt::format("{}: malformed line ignored: {}", path.string(), log_safe(line)));
      continue;
    }
    rules.add(std::move(rule->first), std::move(rule->second));
  }
  return rules;
}

Result<DomainRules<Relay>> load_smtproutes(const std::filesystem::path& path, std::vector<std::string>* warnings) {
  return load_rules<Relay>(path, parse_route_line, warnings);
}

Result<DomainRules<TlsLevel>> load_tlsremote(const std::filesystem::path& path, std::vector<std::string>* warnings) {
  return load_rules<TlsLevel>(path, parse_tls_line, warnings);
}

}  // namespace tikimail
