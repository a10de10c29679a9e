// pop3d/prelogin.cpp: a table of commands, each checking its arguments before it acts; every
// reply goes out before the next line is read (a pipelining client's later commands wait in
// the socket, and after a login they belong to the session stage).
#include "pop3d/prelogin.h"

#include <unistd.h>

#include <algorithm>
#include <thread>

#include "common/address.h"
#include "common/command.h"
#include "common/control.h"
#include "pop3d/apop.h"
#include "pop3d/prelogin_replies.h"

namespace tikimail {

using namespace pop3;

namespace {

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    size_t start = s.find_first_not_of(" \t");
    if (start == std::string_view::npos) break;
    s.remove_prefix(start);
    size_t end = s.find_first_of(" \t");
    out.push_back(s.substr(0, end));
    s = end == std::string_view::npos ? std::string_view() : s.substr(end);
  }
  return out;
}

}  // namespace

std::optional<long> min_login_delay(const LoginPolicy& policy, bool tls) {
  std::optional<long> smallest;
  for (const auto& rule : policy.rules()) {
    if (rule.tls != tls || rule.interval == 0) continue;
    long seconds = static_cast<long>(std::min<uint64_t>(rule.interval, 86400 * 366));
    if (!smallest || seconds < *smallest) smallest = seconds;
  }
  return smallest;
}

Result<PreloginConfig> PreloginConfig::load() {
  PreloginConfig c;
  c.me = local_hostname();
  c.apop = ::access("users/apop-enabled", F_OK) == 0;
  auto timeout = read_control_uint("control/timeoutpop3d", 120);
  if (!timeout) return timeout.error();
  c.timeout = *timeout == 0 ? 120 : static_cast<long>(std::min<uint64_t>(*timeout, 86400));
  auto policy = LoginPolicy::load("control/pop3loginpolicy");
  if (!policy) return policy.error();
  c.login_delay = min_login_delay(*policy, false);
  c.tls_login_delay = min_login_delay(*policy, true);  // STLS may turn a plain session into a TLS one
  return c;
}

const Prelogin::Command Prelogin::kCommands[] = {
    {"USER", &Prelogin::user}, {"PASS", &Prelogin::pass}, {"APOP", &Prelogin::apop},
    {"CAPA", &Prelogin::capa}, {"STLS", &Prelogin::stls}, {"QUIT", &Prelogin::quit},
    // RFC 1939: the TRANSACTION state's commands (NOOP included) are not valid before login.
    {"STAT", &Prelogin::not_yet}, {"LIST", &Prelogin::not_yet}, {"RETR", &Prelogin::not_yet},
    {"DELE", &Prelogin::not_yet}, {"NOOP", &Prelogin::not_yet}, {"RSET", &Prelogin::not_yet},
    {"TOP", &Prelogin::not_yet},  {"UIDL", &Prelogin::not_yet}, {"LAST", &Prelogin::not_yet},
};

Prelogin::Prelogin(const PreloginConfig& config, int in_fd, int out_fd, Authenticate authenticate,
                   std::string timestamp, std::string client_ip, const Log& log, PreloginTls tls)
    : config_(config),
      authenticate_(std::move(authenticate)),
      timestamp_(std::move(timestamp)),
      client_ip_(std::move(client_ip)),
      log_(log),
      in_(in_fd),
      out_(out_fd),
      tls_(std::move(tls)) {
  if (tls_.on) tls_.start = nullptr;  // RFC 2595 section 4: no STLS once TLS is on
}

std::string Prelogin::greeting() const {
  if (!config_.apop) return std::string(kGreeting);
  return fmt::format("{} {}", kGreeting, timestamp_);
}

std::string Prelogin::capabilities() const {
  std::string out = "TOP\r\nUIDL\r\nUSER\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\n";
  if (tls_.start) out += "STLS\r\n";  // only in tlsd's on-request mode, before TLS is on
  const auto& delay = tls_.on ? config_.tls_login_delay : config_.login_delay;
  // RFC 2449 6.8: "USER" says the value may differ after login (it depends on the mailbox).
  if (delay) out += fmt::format("LOGIN-DELAY {} USER\r\n", *delay);
  out += "IMPLEMENTATION tikimail\r\n";
  return out;
}

int Prelogin::run() {
  if (!send(greeting())) return 1;
  for (;;) {
    Line line = in_.read(Deadline::after_seconds(config_.timeout), kMaxPop3Command);  // once per command
    if (line.code == IoCode::kTimeout) {
      log_.info("timeout ip={}", client_ip_);  // seed S10: close without a word
      return 1;
    }
    if (line.code == IoCode::kEof || line.code == IoCode::kError) return 1;
    Next next = Next::kContinue;
    if (line.code == IoCode::kTooLong) {
      next = bad(kLineTooLong);
    } else {
      std::string_view text = line.text;
      auto [verb, arg] = split_command(text);
      const Command* found = nullptr;
      for (const auto& c : kCommands)
        if (equal_nocase(verb, c.verb)) found = &c;
      if (found == nullptr || text.find('\0') != std::string_view::npos) next = bad(kUnknownCommand);
      else next = (this->*found->handler)(arg);
    }
    if (gone_) return 1;
    switch (next) {
      case Next::kContinue: break;
      case Next::kQuit: return 0;
      case Next::kSessionDone: return 0;
      case Next::kClose: return 1;
    }
  }
}

Prelogin::Next Prelogin::user(std::string_view arg) {
  auto w = words(arg);
  if (w.size() != 1 || w[0].size() > kMaxUserName) return bad(kUserSyntax);
  user_ = std::string(w[0]);
  send(kUserOk);  // the same for every name: USER tells nothing about which accounts exist
  return Next::kContinue;
}

Prelogin::Next Prelogin::pass(std::string_view arg) {
  if (!user_) return bad(kNeedUser);
  // RFC 1939 section 7: PASS has one argument, so spaces in it belong to the password.
  if (arg.empty()) return bad(kPassSyntax);
  std::string user = std::move(*user_);
  user_.reset();
  return login(user, arg, "");
}

Prelogin::Next Prelogin::apop(std::string_view arg) {
  if (!config_.apop) return bad(kNoApop);
  auto w = words(arg);
  if (w.size() != 2 || w[0].size() > kMaxUserName || !valid_apop_digest(w[1])) return bad(kApopSyntax);
  user_.reset();
  return login(w[0], w[1], timestamp_);
}

Prelogin::Next Prelogin::capa(std::string_view) {
  send(fmt::format("{}\r\n{}.", kCapaHead, capabilities()));
  return Next::kContinue;
}

// RFC 2595 section 4: STLS only in the AUTHORIZATION state, once, and (our rule) before USER,
// so that no name given in plaintext is carried into the TLS session.
Prelogin::Next Prelogin::stls(std::string_view arg) {
  if (tls_.on) return bad(kTlsActive);
  if (!tls_.start) return bad(kNoStls);
  if (!arg.empty()) return bad(kStlsSyntax);
  if (user_) return bad(kStlsAfterUser);
  if (!send(kStlsGo)) return Next::kClose;
  // Nothing buffered to discard (CVE-2011-0411): CommandReader takes exactly the bytes up to
  // the LF of each command and none after it, so whatever the client pipelined behind STLS is
  // still in the socket, where tlsd reads it as the start of the handshake, which fails.
  auto info = tls_.start();
  if (!info) {
    log_.info("stls failed ip={} why={}", client_ip_, log_safe(info.error().message()));
    return Next::kClose;  // the client is gone or does not speak TLS: exit 1
  }
  log_.info("stls ip={} version={} cipher={}", client_ip_, info->version, info->cipher);
  tls_.on = true;
  tls_.start = nullptr;
  user_.reset();  // RFC 2595 section 4: forget what the client said before the handshake
  return Next::kContinue;
}

Prelogin::Next Prelogin::quit(std::string_view) {
  send(kBye);
  return Next::kQuit;
}

Prelogin::Next Prelogin::not_yet(std::string_view) { return bad(kNotYet); }

Prelogin::Next Prelogin::login(std::string_view user, std::string_view password, std::string_view timestamp) {
  switch (authenticate_(user, password, timestamp)) {
    case AuthOutcome::kSessionDone:
      return Next::kSessionDone;
    case AuthOutcome::kTemporary:
      send(kTemporary);
      return Next::kContinue;
    case AuthOutcome::kWrong:
    case AuthOutcome::kMisuse:
      break;
  }
  // A delay after every failure makes guessing slow (checkpassword logs the attempt).
  std::this_thread::sleep_for(config_.failure_delay);
  if (++failures_ >= kMaxLoginFailures) {
    log_.info("too many login failures ip={}", client_ip_);
    send(kTooManyFailures);
    return Next::kClose;
  }
  send(kAuthFailed);
  return Next::kContinue;
}

Prelogin::Next Prelogin::bad(std::string_view reply) {
  if (++bad_commands_ >= kMaxBadCommands) {
    log_.info("too many bad commands ip={}", client_ip_);
    send(kTooManyBad);
    return Next::kClose;
  }
  send(reply);
  return Next::kContinue;
}

bool Prelogin::send(std::string_view line) {
  out_.put(line);
  out_.put("\r\n");
  if (out_.flush(Deadline::after_seconds(config_.timeout)) != IoCode::kOk) gone_ = true;
  return !gone_;
}

}  // namespace tikimail
