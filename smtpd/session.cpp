// smtpd/session.cpp: the command table and handlers. Each handler checks, then acts.
#include "smtpd/session.h"

#include <sodium.h>

#include <cstdlib>
#include <ctime>
#include <thread>

#include "common/address.h"
#include "common/command.h"
#include "common/control.h"
#include "common/datetime.h"
#include "common/password.h"
#include "relayctl/relay_db.h"
#include "smtpd/data_stream.h"
#include "smtpd/hop_count.h"
#include "smtpd/sasl.h"

namespace tikimail {

using namespace smtp;

namespace {

// Replies held back while pipelined input is pending (Session::run).
constexpr size_t kMaxHeldReplies = 64 * 1024;

// A HELO name goes into the Received header and the logs: printable ASCII without
// spaces or header-breaking bytes, at most 255.
bool valid_helo(std::string_view name) {
  if (name.empty() || name.size() > kMaxDomain) return false;
  for (char c : name)
    if (c <= 32 || c >= 127 || c == '(' || c == ')' || c == ';') return false;
  return true;
}

// TLS version and cipher names from tlsd, made safe for a header comment.
std::string header_safe(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 100)) out.push_back(c > 32 && c < 127 && c != '(' && c != ')' && c != '\\' ? c : '-');
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<SmtpdConfig> SmtpdConfig::load(std::vector<std::string> queue_argv) {
  SmtpdConfig c;
  auto me = read_control_string("control/me", "");
  if (!me) return me.error();
  c.me = me->empty() ? local_hostname() : *me;
  auto hosts = DomainList::load("control/rcpthosts");
  if (!hosts) return hosts.error();
  c.rcpthosts = std::move(*hosts);
  auto databytes = read_control_uint("control/databytes", 20971520);
  if (!databytes) return databytes.error();
  c.databytes = *databytes;
  auto maxrcpt = read_control_uint("control/maxrcpt", 100);
  if (!maxrcpt) return maxrcpt.error();
  c.maxrcpt = static_cast<unsigned>(*maxrcpt > 100000 ? 100000 : *maxrcpt);
  auto timeout = read_control_uint("control/timeoutsmtpd", 300);
  if (!timeout) return timeout.error();
  c.timeout = static_cast<long>(*timeout == 0 || *timeout > 86400 ? 300 : *timeout);
  if (!queue_argv.empty()) c.queue_argv = std::move(queue_argv);
  c.submission = std::getenv("SUBMISSION") != nullptr;  // any value, even empty
  // Seed S4: POP before SMTP is for port 25 only; submission always asks for AUTH.
  c.pop_before_smtp = std::getenv("POPBEFORESMTP") != nullptr && !c.submission;
  auto senders = AuthSenders::load("control/authsenders");
  if (!senders) return senders.error();
  c.authsenders = std::move(*senders);
  return c;
}

Client Client::from_environment() {
  Client c;
  if (const char* ip = std::getenv("TCPREMOTEIP"); ip != nullptr && *ip != '\0') c.ip = ip;
  if (const char* host = std::getenv("TCPREMOTEHOST"); host != nullptr) c.host = host;
  if (const char* port = std::getenv("TCPLOCALPORT"); port != nullptr) c.local_port = port;
  c.relay_client = std::getenv("RELAYCLIENT") != nullptr;
  c.tls = tls_from_environment();
  c.tls_route = tikimail::tls_route();  // nullopt when TLS is on; clears TLSCTL and TLSD either way
  return c;
}

// RFC 2920: commands whose replies may wait in the buffer are all but the ones that
// end a group; smtpd simply flushes whenever no more input is waiting.
const Session::Command Session::kCommands[] = {
    {"HELO", &Session::helo}, {"EHLO", &Session::ehlo}, {"MAIL", &Session::mail},
    {"RCPT", &Session::rcpt}, {"DATA", &Session::data}, {"RSET", &Session::rset},
    {"NOOP", &Session::noop}, {"QUIT", &Session::quit}, {"VRFY", &Session::vrfy},
    {"HELP", &Session::help}, {"EXPN", &Session::not_implemented},
    {"TURN", &Session::not_implemented}, {"ETRN", &Session::not_implemented},
    {"BDAT", &Session::not_implemented}, {"STARTTLS", &Session::starttls},
    {"AUTH", &Session::auth},
};

Session::Session(const SmtpdConfig& config, Client client, int in_fd, int out_fd, const Log& log)
    : config_(config),
      client_(std::move(client)),
      in_(in_fd),
      out_(out_fd),
      log_(log),
      tls_route_(client_.tls_route),
      tls_(client_.tls) {}

void Session::reply(Reply r) { reply_text(r.code, r.text); }

void Session::reply_text(int code, std::string_view text) {
  out_.put(fmt::format("{} {}\r\n", code, text));
}

void Session::bad_command(Reply r) {
  reply(r);
  if (++bad_commands_ >= kMaxBadCommands) {
    reply(kTooManyErrors);
    log_.info("too many errors ip={}", client_.ip);
    quit_ = true;
    exit_code_ = 1;
  }
}

bool Session::flush() { return out_.flush(Deadline::after_seconds(config_.timeout)) == IoCode::kOk; }

int Session::run() {
  log_.info("connect ip={} port={}", client_.ip, client_.local_port);
  reply_text(220, fmt::format("{} ESMTP tikimail", config_.me));
  while (!quit_) {
    // RFC 2920: replies wait while the client has sent more, but never more than
    // kMaxHeldReplies of them (a client that pipelines and never reads would grow them).
    if ((in_.pending() == 0 || out_.pending() >= kMaxHeldReplies) && !flush()) return 1;
    Line line = in_.read_line(Deadline::after_seconds(config_.timeout), kMaxMailLine);
    if (line.code == IoCode::kTooLong) {
      bad_command(kLineTooLong);
      continue;
    }
    if (line.code == IoCode::kTimeout) {
      reply(kTimeout);
      (void)flush();
      log_.info("timeout ip={}", client_.ip);
      return 1;
    }
    if (line.code != IoCode::kOk) {
      log_.info("disconnect ip={}", client_.ip);
      return 1;
    }
    std::string_view text = line.text;
    if (text.find('\0') != std::string_view::npos) {
      bad_command(kUnknownCommand);
      continue;
    }
    auto [verb, arg] = split_command(text);
    const Command* found = nullptr;
    for (const auto& c : kCommands)
      if (equal_nocase(verb, c.verb)) found = &c;
    // Past 512 octets only MAIL, with its extension parameters, is still a command.
    bool mail = found != nullptr && found->handler == &Session::mail;
    if (text.size() + 2 > kMaxCommandLine && !mail) {
      bad_command(kLineTooLong);
      continue;
    }
    if (found == nullptr) {
      bad_command(kUnknownCommand);
      continue;
    }
    (this->*found->handler)(arg);
  }
  (void)flush();
  return exit_code_;
}

void Session::helo(std::string_view arg) {
  arg = trim(arg);
  if (!valid_helo(arg)) return bad_command(kHeloSyntax);
  helo_ = std::string(arg);
  esmtp_ = false;
  tx_.reset();  // RFC 5321 4.1.4: HELO/EHLO reset the transaction
  reply_text(250, config_.me);
}

void Session::ehlo(std::string_view arg) {
  arg = trim(arg);
  if (!valid_helo(arg)) return bad_command(kHeloSyntax);
  helo_ = std::string(arg);
  esmtp_ = true;
  tx_.reset();
  out_.put(fmt::format("250-{}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE {}\r\n", config_.me, config_.databytes));
  if (tls_route_ && !tls_) out_.put("250-STARTTLS\r\n");
  if (auth_offered()) out_.put("250-AUTH PLAIN LOGIN\r\n");
  out_.put("250 ENHANCEDSTATUSCODES\r\n");
}

void Session::starttls(std::string_view arg) {
  if (!tls_route_ || tls_) return bad_command(kNotImplemented);
  if (!trim(arg).empty()) return bad_command(kStartTlsNoParams);
  reply(kReadyTls);
  if (!flush()) {
    quit_ = true;
    return;
  }
  // CVE-2011-0411: whatever the client sent after STARTTLS in clear text is thrown away,
  // never executed. Bytes still in the kernel go to tlsd, whose handshake then fails.
  if (size_t dropped = in_.pending(); dropped > 0) {
    log_.info("starttls discarded={} bytes of pipelined input ip={}", dropped, client_.ip);
    in_.discard_pending();
  }
  auto info = config_.start_tls(*tls_route_, static_cast<int>(config_.timeout));
  tls_route_.reset();  // used once, whatever the outcome
  if (!info) {
    log_.info("starttls failed ip={} why={}", client_.ip, log_safe(info.error().message()));
    quit_ = true;
    exit_code_ = 1;
    return;
  }
  // start_tls put the TLS connection on the same fd numbers: the reader and writer stay
  // pointed at them, with nothing buffered from before.
  tls_ = std::move(*info);
  // RFC 3207 section 4.2: forget everything learned before TLS; a new EHLO is required.
  helo_.reset();
  esmtp_ = false;
  tx_.reset();
  log_.info("starttls ip={} tls={} cipher={}", client_.ip, log_safe(tls_->version), log_safe(tls_->cipher));
}

void Session::auth(std::string_view arg) {
  if (!helo_) return bad_command(kNeedHelo);
  // RFC 4954 section 4 and RFC 3207: passwords never travel in clear text.
  if (!tls_) return bad_command(kAuthNeedsTls);
  if (!auth_offered()) return bad_command(kAuthUnknownMechanism);
  if (account_) return bad_command(kAuthAlready);
  if (tx_) return bad_command(kAuthInTransaction);
  arg = trim(arg);
  size_t sp = arg.find(' ');
  std::string_view mechanism = arg.substr(0, sp);
  std::string_view initial = sp == std::string_view::npos ? std::string_view() : trim(arg.substr(sp + 1));
  if (mechanism.empty()) return bad_command(kSyntax);
  bool plain = mechanism.size() == 5 && starts_with_nocase(mechanism, "PLAIN");
  bool login = mechanism.size() == 5 && starts_with_nocase(mechanism, "LOGIN");
  if (!plain && !login) return bad_command(kAuthUnknownMechanism);

  if (plain) {
    std::string message;
    if (initial.empty()) {
      if (!sasl_step(kAuthContinue, &message)) return;
    } else if (initial == "*") {
      return bad_command(kAuthCancelled);
    } else {
      auto decoded = decode_base64(initial);
      if (!decoded) return bad_command(kAuthBadBase64);
      message = std::move(*decoded);
    }
    auto fields = parse_plain(message);
    sodium_memzero(message.data(), message.size());
    if (!fields) return bad_command(kAuthMalformed);
    // RFC 4616: an authzid other than the authcid would mean acting as someone else.
    if (!fields->authzid.empty() && ascii_lower(fields->authzid) != ascii_lower(fields->authcid))
      return finish_auth(fields->authcid, "", "PLAIN");
    return finish_auth(fields->authcid, fields->password.view(), "PLAIN");
  }

  // LOGIN (draft-murchison-sasl-login): an initial response, when given, is the user name.
  std::string user;
  if (initial.empty()) {
    if (!sasl_step(kAuthUsername, &user)) return;
  } else {
    auto decoded = decode_base64(initial);
    if (!decoded) return bad_command(kAuthBadBase64);
    user = std::move(*decoded);
  }
  std::string password;
  if (!sasl_step(kAuthPassword, &password)) return;
  Secret secret(password);
  sodium_memzero(password.data(), password.size());
  if (user.find('\0') != std::string::npos || secret.view().find('\0') != std::string_view::npos)
    return bad_command(kAuthMalformed);
  finish_auth(user, secret.view(), "LOGIN");
}

bool Session::sasl_step(Reply challenge, std::string* out) {
  reply(challenge);
  if (!flush()) {
    quit_ = true;
    return false;
  }
  Line line = in_.read_line(Deadline::after_seconds(config_.timeout), kMaxAuthLine);
  if (line.code == IoCode::kTooLong) {
    bad_command(kAuthLineTooLong);
    return false;
  }
  if (line.code == IoCode::kTimeout) {
    reply(kTimeout);
    log_.info("timeout ip={}", client_.ip);
    quit_ = true;
    return false;
  }
  if (line.code != IoCode::kOk) {
    log_.info("disconnect ip={}", client_.ip);
    quit_ = true;
    return false;
  }
  std::string_view text = trim(line.text);
  if (text == "*") {  // RFC 4954 section 4: the client cancels the exchange
    bad_command(kAuthCancelled);
    return false;
  }
  auto decoded = text.empty() ? std::optional<std::string>(std::string()) : decode_base64(text);
  if (!decoded) {
    bad_command(kAuthBadBase64);
    return false;
  }
  *out = std::move(*decoded);
  return true;
}

void Session::finish_auth(std::string_view user, std::string_view password, std::string_view mechanism) {
  // A name that cannot be an account address is not sent to checkpassword, and never lands in
  // a header: only printable ASCII without spaces, parentheses or backslashes.
  // What cannot fit checkpassword's 512 bytes on fd 3 (user, password, empty timestamp, three
  // NULs) is a wrong password here, with its delay and count, never a temporary failure.
  bool plausible = !user.empty() && user.size() <= kMaxPath && !password.empty() && password.size() <= kMaxPassword &&
                   user.size() + password.size() + 3 <= kMaxCheckpasswordInput;
  for (char c : user)
    if (c <= 32 || c >= 127 || c == '(' || c == ')' || c == '\\') plausible = false;
  AuthVerdict verdict = plausible ? config_.authenticate(user, password, mechanism) : AuthVerdict::kWrong;
  // One token for the log, so that fail2ban's pattern cannot be fooled by a crafted name.
  std::string name = log_safe(user, 100);
  for (char& c : name)
    if (c == ' ') c = '?';
  if (verdict == AuthVerdict::kOk) {
    account_ = ascii_lower(user);
    log_.info("auth ok ip={} account={} mech={}", client_.ip, *account_, mechanism);
    return reply(kAuthOk);
  }
  if (verdict == AuthVerdict::kTemporary) {
    log_.warn("auth temporary failure ip={} account={} mech={}", client_.ip, name, mechanism);
    return reply(kAuthTemporary);
  }
  // The line a fail2ban filter matches (conf-templates/fail2ban/filter.d/tikimail-smtpd.conf).
  log_.info("auth failed ip={} account={} mech={}", client_.ip, name, mechanism);
  std::this_thread::sleep_for(config_.auth_failure_delay);  // makes guessing slow
  reply(kAuthInvalid);
  if (++auth_failures_ >= config_.max_auth_failures) {
    reply(kTooManyAuthFailures);
    log_.info("too many auth failures ip={}", client_.ip);
    quit_ = true;
    exit_code_ = 1;
  }
}

void Session::mail(std::string_view arg) {
  if (!helo_) return bad_command(kNeedHelo);
  if (config_.submission && !account_) return bad_command(kAuthRequired);
  if (tx_) return bad_command(kNestedMail);
  if (!starts_with_nocase(arg, "FROM:")) return bad_command(kSyntax);
  PathResult parsed = parse_path(arg.substr(5), /*allow_null=*/true, /*allow_bare_postmaster=*/false);
  if (!parsed.ok) return bad_command(parsed.error == PathError::kTooLong ? kSenderPathTooLong : kBadSender);
  // RFC 1870 SIZE and RFC 6152 BODY; nothing else is advertised.
  std::string_view params = parsed.path.params;
  while (!params.empty()) {
    size_t sp = params.find(' ');
    std::string_view param = params.substr(0, sp);
    params = sp == std::string_view::npos ? std::string_view() : trim(params.substr(sp));
    if (starts_with_nocase(param, "SIZE=")) {
      std::string_view digits = param.substr(5);
      if (digits.empty() || digits.size() > 20) return bad_command(kSyntax);
      uint64_t size = 0;
      bool overflow = false;
      for (char c : digits) {
        if (c < '0' || c > '9') return bad_command(kSyntax);
        if (size > (UINT64_MAX - 9) / 10) overflow = true;
        else size = size * 10 + static_cast<uint64_t>(c - '0');
      }
      if (overflow || size > config_.databytes) {
        log_.info("refused size={} reason=databytes ip={}", overflow ? "huge" : std::to_string(size), client_.ip);
        return reply(kTooBig);
      }
    } else if (starts_with_nocase(param, "BODY=")) {
      std::string body = ascii_lower(param.substr(5));  // RFC 6152: exactly one of the two
      if (body != "7bit" && body != "8bitmime") return bad_command(kSyntax);
    } else if (starts_with_nocase(param, "AUTH=") && auth_offered()) {
      // RFC 4954 section 5: the identity a trusted relay vouches for; we trust no one's
      // word for it, so the value is accepted and ignored.
    } else {
      return bad_command(kUnknownParam);
    }
  }
  std::string sender = parsed.path.address.str();
  if (account_ && !config_.authsenders.allows(*account_, sender)) {
    log_.info("rejected from=<{}> reason=sender auth={} ip={}", log_safe(sender), *account_, client_.ip);
    return reply(kSenderNotOwned);
  }
  tx_ = Transaction{std::move(sender), {}, false};
  reply(kMailOk);
}

bool Session::is_local_domain(std::string_view domain) const {
  return config_.rcpthosts.contains(domain);
}

bool Session::may_relay() {
  if (client_.relay_client || account_) return true;
  if (!config_.pop_before_smtp) return false;
  if (!pop_relay_) {
    auto live = RelayDb(config_.relay_dir).check(client_.ip, ::time(nullptr));
    if (!live) {
      // Fail closed: an unreadable db never opens the relay; the client may retry later.
      log_.warn("cannot check relay db for ip={}: {}", client_.ip, live.error().message());
      pop_relay_ = false;
    } else {
      pop_relay_ = *live;
      if (*live) log_.info("relay allowed relay=pop ip={}", client_.ip);
    }
  }
  return *pop_relay_;
}

bool Session::local_recipient_exists(const std::string& address, bool* list_failed) {
  if (!recipients_) {
    auto loaded = Recipients::load(config_.recipients_path);
    if (!loaded) {
      log_.warn("cannot read {}: {}", config_.recipients_path, loaded.error().message());
      *list_failed = true;
      return false;
    }
    recipients_ = std::move(*loaded);
  }
  return recipients_->contains(address);
}

void Session::rcpt(std::string_view arg) {
  if (!tx_) return bad_command(kNeedMail);
  if (!starts_with_nocase(arg, "TO:")) return bad_command(kSyntax);
  tx_->any_rcpt_tried = true;
  PathResult parsed = parse_path(arg.substr(3), /*allow_null=*/false, /*allow_bare_postmaster=*/true);
  if (!parsed.ok) return bad_command(parsed.error == PathError::kTooLong ? kRcptPathTooLong : kBadRcpt);
  if (!parsed.path.params.empty()) return bad_command(kUnknownParam);
  const Address& to = parsed.path.address;
  std::string address = to.str();
  bool postmaster = ascii_lower(to.local) == "postmaster" && (to.domain.empty() || is_local_domain(to.domain));
  if (postmaster) {
    // RFC 5321 4.5.1: always accepted; deliver sends it to control/postmaster.
    // One mailbox whatever the spelling, so that <postmaster> and <postmaster@ours> in one
    // transaction are one recipient.
    address = "postmaster";
  } else if (!to.literal && is_local_domain(to.domain)) {
    // Ours: the account must exist. Whatever its local part holds (%, !, a quoted @),
    // it is looked up as one name here and never routed anywhere else.
    address = ascii_lower(address);
    bool list_failed = false;
    if (!local_recipient_exists(address, &list_failed)) {
      if (list_failed) return reply(kNoRecipientList);
      log_.info("rejected rcpt=<{}> reason=unknown ip={}", log_safe(address), client_.ip);
      return reply(kUnknownUser);
    }
  } else if (!may_relay()) {
    log_.info("rejected rcpt=<{}> reason=relay ip={}", log_safe(address), client_.ip);
    return reply(kRelayDenied);
  }
  for (const auto& r : tx_->rcpts)
    if (r == address) return reply(kRcptOk);  // a repeated recipient is delivered once
  if (tx_->rcpts.size() >= config_.maxrcpt) return reply(kTooManyRcpts);
  tx_->rcpts.push_back(std::move(address));
  reply(kRcptOk);
}

std::string Session::received_header(const std::string& msgid) const {
  std::string from = *helo_;
  if (!client_.host.empty() && valid_helo(client_.host)) from += fmt::format(" ({} [{}])", client_.host, client_.ip);
  else from += fmt::format(" ([{}])", client_.ip);
  std::string for_clause = tx_->rcpts.size() == 1 ? fmt::format("\n\tfor {}", envelope_path(tx_->rcpts[0])) : "";
  // RFC 3848: ESMTPS over TLS, ESMTPA after AUTH, ESMTPSA for both.
  std::string with = esmtp_ ? "ESMTP" : "SMTP";
  if (esmtp_ && tls_) with += "S";
  if (esmtp_ && account_) with += "A";
  std::string comments;  // "\n\t(TLSv1.3 cipher) (authenticated as alice@example.test)"
  if (tls_) comments += fmt::format(" ({} {})", header_safe(tls_->version), header_safe(tls_->cipher));
  if (account_) comments += fmt::format(" (authenticated as {})", *account_);
  if (!comments.empty()) comments.replace(0, 1, "\n\t");
  return fmt::format("Received: from {}\n\tby {} (tikimail) with {} id {}{}{};\n\t{}\n", from, config_.me, with,
                     msgid, comments, for_clause, rfc5322_date(::time(nullptr)));
}

void Session::data(std::string_view arg) {
  if (!tx_) return bad_command(kNeedMail);
  // After refused RCPTs a pipelining client sends DATA anyway (RFC 2920 3.1): not an error.
  if (tx_->rcpts.empty()) return tx_->any_rcpt_tried ? reply(kNoValidRcpt) : bad_command(kNeedRcpt);
  if (!trim(arg).empty()) return bad_command(kDataNoParams);
  std::string msgid = new_message_id();
  if (!receive_body(msgid)) quit_ = true;
  tx_.reset();
}

bool Session::receive_body(const std::string& msgid) {
  auto chain = QueueClient::start(config_.queue_argv, {"MSGID=" + msgid});
  if (!chain) {
    log_.warn("{} cannot start queue: {}", msgid, chain.error().message());
    reply(kQueueStart);
    return true;
  }
  reply(kStartData);
  if (!flush()) return false;
  chain->write(received_header(msgid));

  DataStream body;
  HopCount hops;
  std::string decoded;
  bool too_big = false;
  while (!body.done()) {
    std::string_view bytes;
    // RFC 5321 4.5.3.2.5: the idle limit applies to each block of data received.
    IoCode code = in_.peek(Deadline::after_seconds(config_.timeout), &bytes);
    if (code != IoCode::kOk) {
      chain->abort();
      if (code == IoCode::kTimeout) {
        reply(kTimeout);
        (void)flush();
      }
      log_.info("{} aborted in DATA reason={} ip={}", msgid, code == IoCode::kTimeout ? "timeout" : "eof", client_.ip);
      return false;
    }
    decoded.clear();
    in_.consume(body.feed(bytes, &decoded));
    hops.feed(decoded);
    if (too_big) continue;
    if (body.size() > config_.databytes) {  // read on to the end, keep nothing
      too_big = true;
      chain->abort();
      continue;
    }
    chain->write(decoded);
  }
  if (too_big) {
    log_.info("{} refused size>{} reason=databytes ip={}", msgid, config_.databytes, client_.ip);
    reply(kTooBig);
    return true;
  }
  if (hops.looping()) {
    chain->abort();
    log_.info("{} refused hops={} reason=loop ip={}", msgid, hops.hops(), client_.ip);
    reply(kLooping);
    return true;
  }
  Envelope env{tx_->sender, tx_->rcpts};
  QueueOutcome outcome = chain->finish(env, Deadline::after_seconds(600));
  if (outcome.ok()) {
    log_.info("{} accepted from=<{}> rcpts={} size={} ip={}{}{}{}{}", msgid, log_safe(tx_->sender), tx_->rcpts.size(),
              body.size(), client_.ip, pop_relay_.value_or(false) ? " relay=pop" : "",
              tls_ ? " tls=" + log_safe(tls_->version) : "", account_ ? " auth=" + *account_ : "",
              outcome.trouble.empty() ? "" : " queue=\"" + log_safe(outcome.trouble) + "\"");
    reply_text(250, fmt::format("2.0.0 Ok: queued as {}", msgid));
    return true;
  }
  std::string text = outcome.describe();
  log_.info("{} refused by queue status={} reply=\"{}\" ip={}{}", msgid, outcome.exit_code, text, client_.ip,
            outcome.trouble.empty() ? "" : " trouble=\"" + log_safe(outcome.trouble) + "\"");
  // A stage's exact reply ("423 sorry, ...") is sent as it is; otherwise 554 or 451.
  bool has_code = text.size() > 4 && text[0] >= '2' && text[0] <= '5' && text[1] >= '0' && text[1] <= '9' &&
                  text[2] >= '0' && text[2] <= '9' && text[3] == ' ';
  if (has_code) out_.put(text + "\r\n");
  else reply_text(outcome.permanent() ? 554 : 451, text);
  return true;
}

void Session::rset(std::string_view arg) {
  if (!trim(arg).empty()) return bad_command(kSyntax);
  tx_.reset();
  reply(kOk);
}

void Session::noop(std::string_view) { reply(kOk); }

void Session::quit(std::string_view) {
  reply(kBye);
  quit_ = true;
  exit_code_ = 0;
}

void Session::vrfy(std::string_view arg) {
  if (trim(arg).empty()) return bad_command(kSyntax);  // RFC 5321 4.1.1.6: VRFY needs a string
  reply(kVrfy);
}

void Session::help(std::string_view) { reply(kHelp); }

void Session::not_implemented(std::string_view) { bad_command(kNotImplemented); }

}  // namespace tikimail
