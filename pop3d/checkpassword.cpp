// pop3d/checkpassword.cpp: check first (credentials, account, password or APOP digest), then
// act (relay entry, privileges, Maildir); the exec itself is in checkpassword_main.cpp.
#include "pop3d/checkpassword.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "common/address.h"
#include "common/apop_seal.h"
#include "common/control.h"
#include "pop3d/apop.h"
#include "common/fd.h"
#include "pop3d/mailbox.h"
#include "pop3d/login_policy.h"
#include "relayctl/relay_db.h"

namespace tikimail {

namespace {

// A crypto_pwhash_str of a random password nobody knows, with mailpasswd's parameters: an
// unknown account is verified against it so that it costs what a known one costs.
constexpr std::string_view kDummyHash =
    "$argon2id$v=19$m=65536,t=2,p=1$KIsDppBlpzuFmDYRAxmJYg$lq32/UgGn55OgQZX1RLL5zrKhOQSqczVvsDW0hPfao4";

LoginCheck wrong(std::string address, std::string why) { return {Verdict::kWrong, std::move(address), std::move(why)}; }
LoginCheck temporary(std::string address, std::string why) {
  return {Verdict::kTemporary, std::move(address), std::move(why)};
}

LoginCheck check_pass(const Credentials& c, const Account* account) {
  if (account == nullptr || account->hash == kNoPassword) {
    (void)verify_password(kDummyHash, c.password.view());  // the same work as a real check
    return wrong(account ? account->address : "", account ? "no password set" : "no such account");
  }
  if (!verify_password(account->hash, c.password.view())) return wrong(account->address, "wrong password");
  return {Verdict::kOk, account->address, ""};
}

LoginCheck check_apop(const Credentials& c, const Account* account, const std::string& key_path) {
  if (account == nullptr || !account->apop || account->hash == kNoPassword) {
    (void)apop_matches(c.timestamp, "not a secret", c.password.view());  // comparable work
    if (account == nullptr) return wrong("", "no such account");
    return wrong(account->address, account->apop ? "no password set" : "APOP is off");
  }
  auto key = load_apop_key(key_path);
  if (!key) return temporary(account->address, key.error().message());
  auto secret = unseal_apop_secret(*key, account->apop_secret);
  if (!secret) return temporary(account->address, secret.error().message());
  auto match = apop_matches(c.timestamp, secret->view(), c.password.view());
  if (!match) return temporary(account->address, match.error().message());
  if (!*match) return wrong(account->address, "wrong APOP digest");
  return {Verdict::kOk, account->address, ""};
}

}  // namespace

Result<Credentials> parse_credentials(std::string_view bytes) {
  if (bytes.size() > kMaxCredentials) return Status::permanent("credentials longer than 512 bytes");
  std::string_view field[3];
  for (auto& f : field) {
    size_t nul = bytes.find('\0');
    if (nul == std::string_view::npos) return Status::permanent("credentials: fewer than three NUL-terminated fields");
    f = bytes.substr(0, nul);
    bytes.remove_prefix(nul + 1);
  }
  if (!bytes.empty()) return Status::permanent("credentials: bytes after the third field");
  Credentials c;
  c.user = field[0];
  c.password = Secret(field[1]);
  c.timestamp = field[2];
  return c;
}

Result<Credentials> read_credentials(int fd) {
  char buf[kMaxCredentials + 1];
  size_t got = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf + got, sizeof buf - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::permanent(fmt::format("read fd {}: {}", fd, std::strerror(errno)));
    if (n == 0) break;
    got += static_cast<size_t>(n);
    if (got == sizeof buf) break;  // one byte over the limit: parse_credentials refuses it
  }
  auto credentials = parse_credentials(std::string_view(buf, got));
  sodium_memzero(buf, sizeof buf);
  return credentials;
}

LoginCheck check_login(const Credentials& c, const std::vector<Account>& accounts, const std::string& apop_key_path) {
  std::string user = ascii_lower(c.user);
  const Account* account = check_account_address(user) ? find_account(accounts, user) : nullptr;
  if (c.method() == LoginMethod::kApop) return check_apop(c, account, apop_key_path);
  return check_pass(c, account);
}

std::optional<std::string> smtp_auth_method(const char* authservice, const char* authmech) {
  if (authservice == nullptr || std::string_view(authservice) != "smtp") return std::nullopt;
  std::string mech = authmech == nullptr ? "" : ascii_lower(authmech);
  if (mech == "plain" || mech == "login") return "smtp-" + mech;
  return std::string("smtp");
}

bool caller_may_log_in(uid_t uid, uid_t euid) {
  if (uid == euid || uid == 0) return true;
  const passwd* pop3 = ::getpwnam(kPop3User);
  return pop3 != nullptr && pop3->pw_uid == uid;
}

Result<RelayPolicy> RelayPolicy::load() {
  RelayPolicy p;
  auto window = read_relay_window("control/relaywindow");
  if (!window) return window.error();
  p.window = *window;
  auto pop3s = read_control_string("control/relayfrompop3s", "0");
  if (!pop3s) return pop3s.error();
  p.from_pop3s = *pop3s == "1";
  return p;
}

std::string open_relay(const RelayPolicy& policy, std::string_view ip, std::string_view address, bool pop3s,
                       time_t now, const Log& log) {
  if (pop3s && !policy.from_pop3s) return "skipped-pop3s";  // seed S4: 995 does not open the relay
  auto canonical = canonical_ip(ip);
  if (!canonical) return "no-ip";
  Status s = RelayDb("relay").allow(*canonical, address, now, now + static_cast<time_t>(policy.window));
  if (!s) {
    log.warn("relay entry not written ip={}: {}", *canonical, s.message());
    return "failed";
  }
  return "opened";
}

Status become_mailbox_owner() {
  if (::geteuid() != 0) return Status::ok();  // an ordinary user's install: nobody switches
  errno = 0;
  struct passwd* pw = ::getpwnam(kMailboxUser);
  if (pw == nullptr) return Status::temporary(fmt::format("no user {}", kMailboxUser));
  uid_t uid = pw->pw_uid;
  gid_t gid = pw->pw_gid;
  if (uid == 0 || gid == 0) return Status::temporary(fmt::format("user {} is root", kMailboxUser));
  if (::setgroups(1, &gid) != 0) return Status::from_errno("setgroups", errno);
  if (::setgid(gid) != 0) return Status::from_errno("setgid", errno);
  if (::setuid(uid) != 0) return Status::from_errno("setuid", errno);
  // setuid as root sets the real, effective and saved ids: there must be no way back.
  if (::setuid(0) == 0 || ::seteuid(0) == 0 || ::getuid() != uid || ::geteuid() != uid || ::getegid() != gid)
    return Status::temporary("could still regain root after dropping privileges");
  return Status::ok();
}

bool session_will_refuse(const std::string& maildir, bool tls, const std::filesystem::path& policy_path) {
  auto lock = open_file(maildir + "/" + std::string(kPop3LockFile), O_RDONLY);
  if (lock) {
    if (::flock(lock->get(), LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) return true;
    ::flock(lock->get(), LOCK_UN);
  }
  auto policy = LoginPolicy::load(policy_path);
  if (!policy || policy->rules().empty()) return false;  // a broken file: the session says so
  auto bytes = maildir_bytes(maildir);
  if (!bytes) return false;
  uint64_t interval = policy->interval(tls, *bytes);
  if (interval == 0) return false;
  auto last = read_last_login(maildir);
  return last && login_wait(interval, *last, ::time(nullptr)) > 0;
}

std::string maildir_path(std::string_view address) {
  auto [local, domain] = split_address(address);
  return fmt::format("mail/{}/{}/Maildir", domain, local);
}

Status maildir_present(std::string_view address) {
  if (Status s = check_account_address(address); !s) return Status::temporary(s.message());
  std::string path = maildir_path(address) + "/cur";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::from_errno("stat " + path, errno);
  if (!S_ISDIR(st.st_mode)) return Status::temporary(path + ": not a directory");
  return Status::ok();
}

Result<std::string> enter_maildir(std::string_view address) {
  if (Status s = check_account_address(address); !s) return Status::temporary(s.message());
  auto [local, domain] = split_address(address);
  std::string path = fmt::format("mail/{}/{}/Maildir", domain, local);
  if (::chdir(path.c_str()) != 0) return Status::from_errno("chdir " + path, errno);
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return Status::from_errno("getcwd", errno);
  return std::string(cwd);
}

}  // namespace tikimail
