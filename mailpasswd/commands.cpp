// mailpasswd/commands.cpp: check first, then lock, re-read, change and replace the files.
#include "mailpasswd/commands.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

#include "common/address.h"
#include "common/apop_seal.h"
#include "common/fd.h"
#include "common/recipients.h"
#include "mailpasswd/mailbox.h"

namespace tikimail {

namespace {

Status usage(std::string_view why) { return Status::permanent(fmt::format("{}\n{}", why, kUsage)); }

std::optional<uint64_t> parse_bytes(std::string_view s) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

// The exclusive lock every change holds from reading users/accounts to replacing
// users/recipients, so that two concurrent runs never lose each other's change.
Result<Fd> lock_users() {
  if (::mkdir("users", 0755) != 0 && errno != EEXIST) return Status::from_errno("mkdir users", errno);
  auto lock = open_file(kUsersLock, O_RDWR | O_CREAT, 0600);
  if (!lock) return lock.error();
  while (::flock(lock->get(), LOCK_EX) != 0) {
    if (errno != EINTR) return Status::from_errno(fmt::format("flock {}", kUsersLock), errno);
  }
  return lock;
}

// users/apop-enabled exists exactly when some account has APOP on: pop3d, which must not
// read users/accounts, puts the APOP timestamp in its greeting only then.
Status write_apop_marker(const std::vector<Account>& accounts) {
  bool any = std::any_of(accounts.begin(), accounts.end(), [](const Account& a) { return a.apop; });
  if (any) return replace_file(kApopEnabledPath, "", 0644);
  if (::unlink(kApopEnabledPath) != 0 && errno != ENOENT)
    return Status::from_errno(fmt::format("unlink {}", kApopEnabledPath), errno);
  return Status::ok();
}

// accounts before recipients: a crash in between leaves a recipients list one change
// behind, which the next change rewrites; never a recipient without an account line. The
// APOP marker last: a crash before it leaves APOP unoffered (or offered and failing) until
// the next change, never a login that should not work.
Status write_users(const std::vector<Account>& accounts) {
  if (Status s = replace_file(kAccountsPath, format_accounts(accounts), 0600); !s) return s;
  if (Status s = replace_file(kRecipientsPath, recipients_text(accounts), 0644); !s) return s;
  return write_apop_marker(accounts);
}

Status check_address(std::string_view address) {
  if (Status s = check_account_address(address); !s)
    return Status::permanent(fmt::format("{}: {}", address, s.message()));
  return Status::ok();
}

// The apopsecret field for a password, under control/apopkey (made 0600 when missing).
Result<std::string> seal_new_secret(std::string_view password) {
  auto key = load_or_create_apop_key(kApopKeyPath);
  if (!key) return key.error();
  return seal_apop_secret(*key, password);
}

Result<std::string> add(const Request& r, const PasswordSource& password) {
  if (Status s = check_address(r.address); !s) return s;
  auto [local, domain] = split_address(r.address);
  auto rcpthosts = DomainList::load(kRcpthostsPath);
  if (!rcpthosts) return rcpthosts.error();
  if (!rcpthosts->contains(domain))
    return Status::permanent(fmt::format("{}: domain {} is not in {}", r.address, domain, kRcpthostsPath));
  auto before = load_accounts(kAccountsPath);  // fail before asking for a password
  if (!before) return before.error();
  if (find_account(*before, r.address) != nullptr) return Status::permanent(fmt::format("{}: account exists", r.address));

  auto secret = password(r.address);
  if (!secret) return secret.error();
  auto hash = hash_password(secret->view());
  if (!hash) return hash.error();

  auto lock = lock_users();
  if (!lock) return lock.error();
  auto accounts = load_accounts(kAccountsPath);
  if (!accounts) return accounts.error();
  Account account;
  account.address = r.address;
  account.hash = std::move(*hash);
  account.plan = r.plan;
  account.quota = r.quota;
  if (Status s = add_account(*accounts, std::move(account)); !s) return s;
  // The mailbox first: an account must never exist without its Maildir.
  if (Status s = create_mailbox(domain, local, mailbox_owner()); !s) return s;
  if (Status s = write_users(*accounts); !s) return s;
  return fmt::format("added {}; mailbox {}\n", r.address, maildir_path(domain, local));
}

Result<std::string> del(const Request& r) {
  if (Status s = check_address(r.address); !s) return s;
  auto lock = lock_users();
  if (!lock) return lock.error();
  auto accounts = load_accounts(kAccountsPath);
  if (!accounts) return accounts.error();
  if (!remove_account(*accounts, r.address)) return Status::permanent(fmt::format("{}: no such account", r.address));
  if (Status s = write_users(*accounts); !s) return s;
  auto [local, domain] = split_address(r.address);
  return fmt::format("deleted {}; its mailbox {} stays on disk\n", r.address, maildir_path(domain, local));
}

Result<std::string> passwd(const Request& r, const PasswordSource& password) {
  if (Status s = check_address(r.address); !s) return s;
  auto before = load_accounts(kAccountsPath);
  if (!before) return before.error();
  if (find_account(*before, r.address) == nullptr) return Status::permanent(fmt::format("{}: no such account", r.address));

  auto secret = password(r.address);
  if (!secret) return secret.error();
  auto hash = hash_password(secret->view());
  if (!hash) return hash.error();

  auto lock = lock_users();
  if (!lock) return lock.error();
  auto accounts = load_accounts(kAccountsPath);
  if (!accounts) return accounts.error();
  Account* account = find_account(*accounts, r.address);
  if (account == nullptr) return Status::permanent(fmt::format("{}: no such account", r.address));
  // The sealed APOP copy must follow, or the old password would keep working for APOP.
  if (account->apop) {
    auto sealed = seal_new_secret(secret->view());
    if (!sealed) return sealed.error();
    account->apop_secret = std::move(*sealed);
  }
  account->hash = std::move(*hash);
  if (Status s = write_users(*accounts); !s) return s;
  return fmt::format("changed the password of {}{}\n", r.address, account->apop ? " (and its APOP secret)" : "");
}

// apop on: the password typed must be the account's (the hash says so); its sealed copy is
// what checkpassword compares APOP digests with.
Result<std::string> apop_on(const Request& r, const PasswordSource& password) {
  if (Status s = check_address(r.address); !s) return s;
  auto before = load_accounts(kAccountsPath);
  if (!before) return before.error();
  if (find_account(*before, r.address) == nullptr) return Status::permanent(fmt::format("{}: no such account", r.address));

  auto secret = password(r.address);
  if (!secret) return secret.error();
  auto sealed = seal_new_secret(secret->view());  // creates control/apopkey on first use
  if (!sealed) return sealed.error();

  auto lock = lock_users();
  if (!lock) return lock.error();
  auto accounts = load_accounts(kAccountsPath);
  if (!accounts) return accounts.error();
  Account* account = find_account(*accounts, r.address);
  if (account == nullptr) return Status::permanent(fmt::format("{}: no such account", r.address));
  if (!verify_password(account->hash, secret->view()))  // against the hash as it is now, under the lock
    return Status::permanent(fmt::format("{}: that is not the account's password", r.address));
  account->apop = true;
  account->apop_secret = std::move(*sealed);
  if (Status s = write_users(*accounts); !s) return s;
  return fmt::format("APOP on for {}\n", r.address);
}

Result<std::string> apop_off(const Request& r) {
  if (Status s = check_address(r.address); !s) return s;
  auto lock = lock_users();
  if (!lock) return lock.error();
  auto accounts = load_accounts(kAccountsPath);
  if (!accounts) return accounts.error();
  Account* account = find_account(*accounts, r.address);
  if (account == nullptr) return Status::permanent(fmt::format("{}: no such account", r.address));
  account->apop = false;
  account->apop_secret.clear();
  if (Status s = write_users(*accounts); !s) return s;
  return fmt::format("APOP off for {}\n", r.address);
}

// Never the hash or the APOP secret.
Result<std::string> list() {
  auto accounts = load_accounts(kAccountsPath);
  if (!accounts) return accounts.error();
  std::string out;
  for (const auto& a : *accounts) {
    out += fmt::format("{} plan={} quota={} apop={}\n", a.address, a.plan, a.quota ? std::to_string(*a.quota) : "-",
                       a.apop ? "on" : "off");
  }
  return out;
}

}  // namespace

Result<Request> parse_request(const std::vector<std::string>& args) {
  if (args.empty()) return usage("no command");
  Request r;
  const std::string& verb = args[0];
  if (verb == "add") r.verb = Verb::kAdd;
  else if (verb == "del") r.verb = Verb::kDel;
  else if (verb == "passwd") r.verb = Verb::kPasswd;
  else if (verb == "list") r.verb = Verb::kList;
  else if (verb == "apop" && args.size() > 1 && args[1] == "on") r.verb = Verb::kApopOn;
  else if (verb == "apop" && args.size() > 1 && args[1] == "off") r.verb = Verb::kApopOff;
  else if (verb == "apop") return usage("apop wants on or off, then the address");
  else return usage(fmt::format("unknown command '{}'", verb));

  std::vector<std::string> positional;
  size_t first = r.verb == Verb::kApopOn || r.verb == Verb::kApopOff ? 2 : 1;
  for (size_t i = first; i < args.size(); ++i) {
    std::string_view arg = args[i];
    std::string_view name = arg.substr(0, arg.find('='));
    if (name != "--plan" && name != "--quota") {
      if (arg.starts_with("-")) return usage(fmt::format("unknown option '{}'", arg));
      positional.emplace_back(arg);
      continue;
    }
    if (r.verb != Verb::kAdd) return usage(fmt::format("{} is an option of add only", name));
    std::string_view value;
    if (name.size() < arg.size()) value = arg.substr(name.size() + 1);
    else if (i + 1 < args.size()) value = args[++i];
    else return usage(fmt::format("{} needs a value", name));
    if (name == "--plan") {
      if (value == kNoPlan || !valid_plan(value))
        return usage(fmt::format("unknown plan '{}' (personal, business, reseller, dedicated)", value));
      r.plan = value;
    } else if (value != "-") {
      r.quota = parse_bytes(value);
      if (!r.quota) return usage(fmt::format("--quota wants bytes or '-', not '{}'", value));
    }
  }
  size_t want = r.verb == Verb::kList ? 0 : 1;
  if (positional.size() != want) return usage(want == 0 ? "list takes no address" : "one address wanted");
  if (want == 1) r.address = ascii_lower(positional[0]);
  return r;
}

Result<std::string> run_request(const Request& request, const PasswordSource& password) {
  switch (request.verb) {
    case Verb::kAdd: return add(request, password);
    case Verb::kDel: return del(request);
    case Verb::kPasswd: return passwd(request, password);
    case Verb::kApopOn: return apop_on(request, password);
    case Verb::kApopOff: return apop_off(request);
    case Verb::kList: return list();
  }
  return Status::permanent("unknown command");
}

int exit_code_for(const Status& status) { return status.permanent_failure() ? 100 : 111; }

}  // namespace tikimail
