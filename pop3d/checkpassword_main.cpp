// pop3d/checkpassword_main.cpp: the checkpassword stage: verify the credentials on fd 3,
// open POP before SMTP, become vmail in the account's Maildir and exec the session
// (pop3d/README.md). Exit 1 wrong, 2 misuse, 111 temporary; otherwise the session's code.
// With AUTHSERVICE=smtp (smtpd's SMTP AUTH) it only verifies: exit 0, 1, 2 or 111.
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>

#include "common/accounts.h"
#include "common/apop_seal.h"
#include "common/control.h"
#include "common/log.h"
#include "pop3d/checkpassword.h"
#include "pop3d/handoff.h"
#include "pop3d/hash_slots.h"

using namespace tikimail;

int main(int argc, char** argv) try {
  Log log("checkpassword");
  // SMTP AUTH: verify only. No relay entry, no uid switch, no Maildir, no exec.
  std::optional<std::string> smtp_method = smtp_auth_method(std::getenv("AUTHSERVICE"), std::getenv("AUTHMECH"));
  if (argc < 2 && !smtp_method) {
    log.fatal("usage: checkpassword program [args...]");
    return kCheckMisuse;
  }
  // Set-uid root: the full login (relay entry, becoming vmail, exec) is for pop3d alone;
  // every other member of tiki-auth (smtpd) may only verify (DESIGN section 4).
  if (!smtp_method && !caller_may_log_in(::getuid(), ::geteuid())) {
    log.fatal("uid {} may only verify (AUTHSERVICE=smtp); the full login is pop3d's", ::getuid());
    return kCheckMisuse;
  }
  auto credentials = read_credentials(3);
  if (!credentials) {
    log.fatal("{}", credentials.error().message());
    return kCheckMisuse;
  }
  if (smtp_method && credentials->method() == LoginMethod::kApop) {
    log.fatal("AUTHSERVICE=smtp takes no APOP timestamp");
    return kCheckMisuse;
  }
  std::vector<std::string> next(argv + 1, argv + argc);
  if (!smtp_method) next[0] = resolve_program(next[0], std::filesystem::current_path().string());  // we chdir below
  const char* env_ip = std::getenv("TCPREMOTEIP");
  std::string ip = env_ip ? env_ip : "unknown";
  std::string method = smtp_method ? *smtp_method : credentials->method() == LoginMethod::kApop ? "apop" : "pass";
  LoginCheck check{Verdict::kTemporary, "", ""};
  std::string waited;  // "slotwait=NNNms" at the end of the log line when a hash slot was slow to come
  // One log line per attempt, never with the password or digest; returns `code`.
  auto logged = [&](int code, std::string_view detail) {
    std::string account = check.address.empty() ? log_safe(credentials->user, 254) : check.address;
    const char* result = code == 0 ? "ok" : code == kCheckWrong ? "fail" : "temp";
    log.info("login account={} ip={} method={} result={}{}{}{}{}", account, log_safe(ip, 64), method, result,
             detail.empty() ? "" : " ", detail, waited.empty() ? "" : " ", waited);
    return code;
  };

  if (Status s = enter_home(); !s) return logged(kCheckTemporary, "why=" + s.message());
  auto accounts = load_accounts("users/accounts");
  if (!accounts) return logged(kCheckTemporary, "why=" + accounts.error().message());
  // USER/PASS and SMTP AUTH hash with argon2id: at most control/concurrencyhash of them at
  // once on the host (pop3d/README.md, "Hash slots"). APOP hashes nothing.
  std::optional<HashSlot> slot;
  if (credentials->method() == LoginMethod::kPass) {
    auto count = load_hash_slot_count();
    if (!count) return logged(kCheckTemporary, "why=" + count.error().message());
    auto taken = take_hash_slot(kHashSlotsPath, *count, kHashSlotWait);
    if (!taken && taken.error().temporary_failure()) return logged(kCheckTemporary, "why=" + taken.error().message());
    if (!taken) log.warn("password check without a slot: {}", taken.error().message());
    if (taken) slot.emplace(std::move(*taken));
    if (slot && slot->waited() >= std::chrono::milliseconds(100))
      waited = fmt::format("slotwait={}ms", slot->waited().count());
  }
  check = check_login(*credentials, *accounts, kApopKeyPath);
  slot.reset();  // the next check may start
  if (check.verdict == Verdict::kWrong) return logged(kCheckWrong, "why=" + check.why);
  if (check.verdict == Verdict::kTemporary) return logged(kCheckTemporary, "why=" + check.why);
  if (smtp_method) return logged(0, "");

  auto policy = RelayPolicy::load();
  if (!policy) return logged(kCheckTemporary, "why=" + policy.error().message());
  // A login that cannot reach its mailbox is no successful login (seed S4): look before the
  // relay opens. (The session's own refusals, IN-USE and LOGIN-DELAY, come after it.)
  if (Status s = maildir_present(check.address); !s) return logged(kCheckTemporary, "why=" + s.message());
  bool tls = std::getenv("POP3S") != nullptr || std::getenv("TLS") != nullptr;
  std::string relay = "skipped-refused";  // the session will answer [IN-USE] or [LOGIN-DELAY]
  if (!session_will_refuse(maildir_path(check.address), tls, "control/pop3loginpolicy"))
    relay = open_relay(*policy, ip, check.address, std::getenv("POP3S") != nullptr, ::time(nullptr), log);
  if (Status s = become_mailbox_owner(); !s) return logged(kCheckTemporary, "why=" + s.message());
  auto maildir = enter_maildir(check.address);
  if (!maildir) return logged(kCheckTemporary, "why=" + maildir.error().message());
  if (::setenv("USER", check.address.c_str(), 1) != 0 || ::setenv("HOME", maildir->c_str(), 1) != 0)
    return logged(kCheckTemporary, "why=setenv");
  logged(0, "relay=" + relay);

  std::vector<char*> args;
  for (auto& a : next) args.push_back(a.data());
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  log.fatal("exec {}: {}", next[0], std::strerror(errno));
  return kCheckTemporary;
} catch (...) {
  return kCheckTemporary;  // a bug or out of memory: pop3d answers [SYS/TEMP]
}
