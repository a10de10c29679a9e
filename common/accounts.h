// common/accounts.h: the users/accounts file and the users/recipients list derived from it
// (the format is the contract in common/README.md, "Accounts").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tikimail {

inline constexpr size_t kMaxAccountAddress = 254;          // local@domain, whole
inline constexpr size_t kMaxAccountsFile = 64 * 1024 * 1024;
inline constexpr std::string_view kNoPassword = "!";      // a hash no password matches
inline constexpr std::string_view kNoPlan = "-";

// The plan names of seed 002 (DESIGN S7). The quota issue gives each its default quota.
inline constexpr std::string_view kPlans[] = {"personal", "business", "reseller", "dedicated"};

// One line of users/accounts: address:hash:plan:quota:apop:apopsecret.
struct Account {
  std::string address;                // lowercase local@domain (check_account_address)
  std::string hash{kNoPassword};      // crypto_pwhash_str output ("$argon2id$..."), or "!"
  std::string plan{kNoPlan};          // a name from kPlans, or "-"
  std::optional<uint64_t> quota;      // bytes; nullopt ("-") means the plan's default
  bool apop = false;                  // APOP allowed (seed S3: off by default)
  std::string apop_secret;            // sealed APOP secret; empty unless apop is on

  bool operator==(const Account&) const = default;
};

// Ok when `address` can name an account: lowercase local@domain, the local part of
// [a-z0-9._+-], at most 64 bytes, not starting or ending with '.', no "..", the domain
// valid per valid_domain(), at most kMaxAccountAddress bytes in all. Such an address is
// also a safe pair of path components (mail/<domain>/<local>). Else a permanent error
// saying why.
Status check_account_address(std::string_view address);

// True for a name in kPlans or "-".
bool valid_plan(std::string_view plan);

// Parses the text of users/accounts. '#' comment lines and blank lines are skipped (and
// not kept). A bad line is a permanent error "line N: why"; so is a second account with
// the same address. Accounts come back in file order.
Result<std::vector<Account>> parse_accounts(std::string_view text);

// The text of users/accounts: a fixed comment header, then one line per account in the
// given order. parse_accounts(format_accounts(a)) == a for accounts that pass the checks
// of parse_accounts, and formatting that again gives the same bytes.
std::string format_accounts(const std::vector<Account>& accounts);

// Reads and parses `path`; a missing file is no accounts. A file that does not parse is a
// temporary error naming the path and line (an administrator fixes it; the caller retries).
Result<std::vector<Account>> load_accounts(const std::string& path);

// The account with this address (compared exactly: addresses are stored lowercase), or
// nullptr. The pointer lives until `accounts` changes.
const Account* find_account(const std::vector<Account>& accounts, std::string_view address);
Account* find_account(std::vector<Account>& accounts, std::string_view address);
// Appends `account`. Permanent error when its address is invalid or already present.
Status add_account(std::vector<Account>& accounts, Account account);
// Removes the account; false when there was none.
bool remove_account(std::vector<Account>& accounts, std::string_view address);

// The content of users/recipients: every address lowercased, sorted bytewise, one a line
// with a final newline ("" for no accounts). Recipients::load reads it.
std::string recipients_text(const std::vector<Account>& accounts);

}  // namespace tikimail
