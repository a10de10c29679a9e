// smtpd/auth_senders.cpp: the sender rule for authenticated accounts.
#include "smtpd/auth_senders.h"

#include "common/address.h"
#include "common/control.h"

namespace tikimail {

Result<AuthSenders> AuthSenders::load(const std::filesystem::path& path) {
  auto lines = read_control_lines(path);
  if (!lines) return lines.error();
  auto senders = from_lines(*lines);
  if (!senders) return Status::permanent(fmt::format("{}: {}", path.string(), senders.error().message()));
  return senders;
}

Result<AuthSenders> AuthSenders::from_lines(const std::vector<std::string>& lines) {
  AuthSenders s;
  for (const auto& line : lines) {
    size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == line.size() ||
        line.find_first_of(" \t", 0) != std::string::npos)
      return Status::permanent(fmt::format("bad line \"{}\": want account:address or account:@domain", line));
    Rule r{ascii_lower(line.substr(0, colon)), ascii_lower(line.substr(colon + 1))};
    if (r.pattern == "@" || r.pattern.find('@') == std::string::npos)
      return Status::permanent(fmt::format("bad line \"{}\": want account:address or account:@domain", line));
    s.rules_.push_back(std::move(r));
  }
  return s;
}

bool AuthSenders::allows(std::string_view account, std::string_view sender) const {
  if (sender.empty()) return true;  // bounces and notifications carry the null sender
  std::string who = ascii_lower(account);
  std::string from = ascii_lower(sender);
  if (from == who) return true;
  std::string_view domain = split_address(from).second;
  for (const auto& r : rules_) {
    if (r.account != who) continue;
    if (r.pattern == from) return true;
    if (r.pattern.front() == '@' && !domain.empty() && std::string_view(r.pattern).substr(1) == domain) return true;
  }
  return false;
}

}  // namespace tikimail
