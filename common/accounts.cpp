// common/accounts.cpp: parsing and formatting users/accounts; deriving users/recipients.
#include "common/accounts.h"

#include <algorithm>
#include <cerrno>
#include <charconv>

#include "common/address.h"
#include "common/fd.h"

namespace tikimail {

namespace {

constexpr std::string_view kHeader =
    "# users/accounts: written by mailpasswd (common/README.md); edits by hand are not kept.\n"
    "# address:hash:plan:quota:apop:apopsecret\n";

bool is_local_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '+' || c == '-';
}

// A hash or a sealed secret: printable ASCII without ':' (the field separator) or space.
bool valid_field(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c < 0x7f && c != ':'; });
}

// Decimal without sign or leading zeros, so that formatting gives the same text back.
std::optional<uint64_t> parse_quota(std::string_view s) {
  if (s.empty() || (s.size() > 1 && s.front() == '0')) return std::nullopt;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

// Splits at ':' into exactly `n` fields; false for any other count.
bool split_fields(std::string_view line, std::string_view* fields, size_t n) {
  size_t i = 0;
  for (;;) {
    size_t colon = line.find(':');
    if (i == n) return false;
    fields[i++] = line.substr(0, colon);
    if (colon == std::string_view::npos) break;
    line.remove_prefix(colon + 1);
  }
  return i == n;
}

Result<Account> parse_line(std::string_view line) {
  std::string_view f[6];
  if (!split_fields(line, f, 6)) return Status::permanent("expected 6 fields separated by ':'");
  Account a;
  if (Status s = check_account_address(f[0]); !s) return s;
  a.address = f[0];
  if (f[1].empty() || !valid_field(f[1])) return Status::permanent("bad password hash");
  a.hash = f[1];
  if (!valid_plan(f[2])) return Status::permanent(fmt::format("unknown plan '{}'", f[2]));
  a.plan = f[2];
  if (f[3] != "-") {
    a.quota = parse_quota(f[3]);
    if (!a.quota) return Status::permanent("quota is neither bytes nor '-'");
  }
  if (f[4] != "0" && f[4] != "1") return Status::permanent("apop is neither 0 nor 1");
  a.apop = f[4] == "1";
  if (!valid_field(f[5])) return Status::permanent("bad APOP secret");
  if (a.apop == f[5].empty()) return Status::permanent("APOP secret must be set exactly when apop is 1");
  a.apop_secret = f[5];
  return a;
}

}  // namespace

Status check_account_address(std::string_view address) {
  if (address.size() > kMaxAccountAddress) return Status::permanent("address longer than 254 bytes");
  size_t at = address.find('@');
  if (at == std::string_view::npos) return Status::permanent("address has no '@'");
  std::string_view local = address.substr(0, at);
  std::string_view domain = address.substr(at + 1);
  if (local.empty()) return Status::permanent("empty local part");
  if (local.size() > 64) return Status::permanent("local part longer than 64 bytes");
  if (!std::all_of(local.begin(), local.end(), is_local_char))
    return Status::permanent("local part may hold only a-z 0-9 . _ + -");
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos)
    return Status::permanent("local part starts or ends with '.' or holds '..'");
  if (!valid_domain(domain)) return Status::permanent("bad domain");
  if (ascii_lower(domain) != domain) return Status::permanent("domain not lowercase");
  return Status::ok();
}

bool valid_plan(std::string_view plan) {
  return plan == kNoPlan || std::find(std::begin(kPlans), std::end(kPlans), plan) != std::end(kPlans);
}

Result<std::vector<Account>> parse_accounts(std::string_view text) {
  std::vector<Account> accounts;
  size_t number = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++number;
    if (line.empty() || line.front() == '#') continue;
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto account = parse_line(line);
    if (!account) return Status::permanent(fmt::format("line {}: {}", number, account.error().message()));
    if (find_account(accounts, account->address) != nullptr)
      return Status::permanent(fmt::format("line {}: {} appears twice", number, account->address));
    accounts.push_back(std::move(*account));
  }
  return accounts;
}

std::string format_accounts(const std::vector<Account>& accounts) {
  std::string out(kHeader);
  for (const auto& a : accounts) {
    out += fmt::format("{}:{}:{}:{}:{}:{}\n", a.address, a.hash, a.plan,
                       a.quota ? std::to_string(*a.quota) : "-", a.apop ? '1' : '0', a.apop_secret);
  }
  return out;
}

Result<std::vector<Account>> load_accounts(const std::string& path) {
  auto text = read_file(path, kMaxAccountsFile);
  if (!text) {
    if (text.error().errno_value() == ENOENT) return std::vector<Account>();
    return text.error();
  }
  auto accounts = parse_accounts(*text);
  if (!accounts) return Status::temporary(fmt::format("{} {}", path, accounts.error().message()));
  return accounts;
}

const Account* find_account(const std::vector<Account>& accounts, std::string_view address) {
  for (const auto& a : accounts)
    if (a.address == address) return &a;
  return nullptr;
}

Account* find_account(std::vector<Account>& accounts, std::string_view address) {
  for (auto& a : accounts)
    if (a.address == address) return &a;
  return nullptr;
}

Status add_account(std::vector<Account>& accounts, Account account) {
  if (Status s = check_account_address(account.address); !s)
    return Status::permanent(fmt::format("{}: {}", account.address, s.message()));
  if (find_account(accounts, account.address) != nullptr)
    return Status::permanent(fmt::format("{}: account exists", account.address));
  accounts.push_back(std::move(account));
  return Status::ok();
}

bool remove_account(std::vector<Account>& accounts, std::string_view address) {
  auto it = std::find_if(accounts.begin(), accounts.end(), [&](const Account& a) { return a.address == address; });
  if (it == accounts.end()) return false;
  accounts.erase(it);
  return true;
}

std::string recipients_text(const std::vector<Account>& accounts) {
  std::vector<std::string> addresses;
  addresses.reserve(accounts.size());
  for (const auto& a : accounts) addresses.push_back(ascii_lower(a.address));
  std::sort(addresses.begin(), addresses.end());  // std::string compares bytewise (char_traits)
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  std::string out;
  for (const auto& a : addresses) out.append(a).push_back('\n');
  return out;
}

}  // namespace tikimail
