// pop3d/transaction.cpp: the command table and handlers of the TRANSACTION state. Each
// handler checks its arguments, then acts; replies wait in the buffer until no input is pending.
#include "pop3d/transaction.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "common/command.h"
#include "common/control.h"
#include "pop3d/multiline.h"
#include "pop3d/pop3_replies.h"

namespace tikimail {

using namespace pop3_session;

namespace {

constexpr size_t kChunk = 64 * 1024;  // RETR reads and sends the file this much at a time


// Splits at spaces (RFC 1939 separates by one; runs are tolerated).
std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// A plain decimal (message numbers and TOP's line count). Leading zeros are ignored and a
// value past 999999999 stays at 1000000000: no mailbox has that many messages, and TOP's
// line count then means the whole body (RFC 1939 7 puts no bound on either).
std::optional<uint64_t> small_number(std::string_view digits) {
  constexpr uint64_t kSaturated = 1000000000;
  if (digits.empty() || digits.size() > 40) return std::nullopt;
  uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value >= kSaturated ? kSaturated : value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value > kSaturated ? kSaturated : value;
}

}  // namespace

Result<Pop3SessionConfig> Pop3SessionConfig::load(const std::filesystem::path& control_dir) {
  Pop3SessionConfig c;
  auto timeout = read_control_uint(control_dir / "timeoutpop3d", 120);
  if (!timeout) return timeout.error();
  c.timeout = *timeout == 0 ? 120 : static_cast<long>(std::min<uint64_t>(*timeout, 86400));  // as pop3d
  auto policy = LoginPolicy::load(control_dir / "pop3loginpolicy");
  if (!policy) return policy.error();
  c.policy = std::move(*policy);
  return c;
}

Pop3Login Pop3Login::from_environment() {
  Pop3Login l;
  if (const char* user = std::getenv("USER"); user != nullptr && *user != '\0') l.account = log_safe(user);
  if (const char* ip = std::getenv("TCPREMOTEIP"); ip != nullptr && *ip != '\0') l.ip = log_safe(ip);
  l.tls = std::getenv("POP3S") != nullptr || std::getenv("TLS") != nullptr;
  return l;
}

const Pop3Session::Command Pop3Session::kCommands[] = {
    {"STAT", &Pop3Session::stat},  {"LIST", &Pop3Session::list},  {"UIDL", &Pop3Session::uidl},
    {"RETR", &Pop3Session::retr},  {"TOP", &Pop3Session::top},    {"DELE", &Pop3Session::dele},
    {"NOOP", &Pop3Session::noop},  {"RSET", &Pop3Session::rset},  {"QUIT", &Pop3Session::quit},
    {"CAPA", &Pop3Session::capa},
    // AUTHORIZATION-state commands: the login is over.
    {"USER", &Pop3Session::not_in_this_state}, {"PASS", &Pop3Session::not_in_this_state},
    {"APOP", &Pop3Session::not_in_this_state}, {"AUTH", &Pop3Session::not_in_this_state},
    {"STLS", &Pop3Session::not_in_this_state},
};

Pop3Session::Pop3Session(const Pop3SessionConfig& config, Pop3Login login, std::string maildir, int in_fd,
                         int out_fd, const Log& log)
    : config_(config), login_(std::move(login)), maildir_(std::move(maildir)), in_(in_fd), out_(out_fd),
      log_(log) {}

void Pop3Session::reply(std::string_view line) {
  out_.put(line);
  out_.put("\r\n");
}

void Pop3Session::bad_command(std::string_view line) {
  reply(line);
  if (++bad_commands_ >= kMaxPop3BadCommands) {
    reply(kTooManyErrors);
    log_.info("too many errors account={} ip={}", login_.account, login_.ip);
    done_ = true;
    exit_code_ = session_exit::kGone;
  }
}

bool Pop3Session::flush() {
  // A client that did not read for the whole deadline once does not get a second one.
  if (writable_ && out_.flush(Deadline::after_seconds(config_.timeout)) != IoCode::kOk) writable_ = false;
  return writable_;
}

int Pop3Session::run() {
  if (open_mailbox()) serve();
  (void)flush();
  return exit_code_;
}

bool Pop3Session::open_mailbox() {
  auto lock = lock_mailbox(maildir_);
  if (!lock) {
    if (lock.error().errno_value() == EWOULDBLOCK) {
      log_.info("in-use account={} ip={}", login_.account, login_.ip);
      reply(kInUse);
      exit_code_ = session_exit::kRefused;
    } else {
      log_.warn("account={} {}", login_.account, lock.error().message());
      reply(kCannotOpen);
      exit_code_ = session_exit::kTrouble;
    }
    return false;
  }
  lock_ = std::move(*lock);

  auto trouble = [this](const Status& s) {
    log_.warn("account={} {}", login_.account, s.message());
    reply(kCannotOpen);
    exit_code_ = session_exit::kTrouble;
    return false;
  };
  // Seed S11: the policy is decided before the scan, on the bytes stored (no file is read),
  // so that a refused login costs a directory listing and nothing more.
  if (!config_.policy.rules().empty()) {
    auto bytes = maildir_bytes(maildir_);
    if (!bytes) return trouble(bytes.error());
    interval_ = config_.policy.interval(login_.tls, *bytes);
    if (interval_ > 0) {
      auto last = read_last_login(maildir_);
      if (!last) return trouble(last.error());
      uint64_t wait = login_wait(interval_, *last, ::time(nullptr));
      if (wait > 0) {
        log_.info("login-delay account={} ip={} wait={} interval={} bytes={}", login_.account, login_.ip, wait,
                  interval_, *bytes);
        reply(fmt::format(fmt::runtime(kLoginDelayFormat), wait));
        exit_code_ = session_exit::kRefused;
        return false;
      }
    }
  }

  auto scanned = scan_mailbox(maildir_);
  if (!scanned) return trouble(scanned.error());
  messages_.reserve(scanned->size());
  for (auto& m : *scanned) messages_.push_back(Entry{std::move(m), false});
  // Every successful login is recorded, enforced or not, so that switching the policy on
  // measures from real logins.
  if (Status s = touch_last_login(maildir_); !s) log_.warn("account={} {}", login_.account, s.message());

  size_t count = 0;
  uint64_t octets = 0;
  count_visible(&count, &octets);
  log_.info("login account={} ip={} messages={} octets={}", login_.account, login_.ip, count, octets);
  reply(fmt::format(fmt::runtime(kLoggedInFormat), count, octets));
  return true;
}

void Pop3Session::serve() {
  while (!done_) {
    // PIPELINING (RFC 2449 section 6.6): answers wait while the client has sent more, but
    // never more than kChunk of them: a client that pipelines and never reads (each of its
    // writes ending inside a command, so that input is always pending) would otherwise grow
    // them without end. Past kChunk the flush waits for the client like any write.
    if ((in_.pending() == 0 || out_.pending() >= kChunk) && !flush()) {
      log_.info("disconnect account={} ip={} reason=write", login_.account, login_.ip);
      exit_code_ = session_exit::kGone;
      return;
    }
    // RFC 1939 section 3: the autologout timer restarts with every command.
    Line line = in_.read_line(Deadline::after_seconds(config_.timeout), kMaxPop3CommandLine);
    if (line.code == IoCode::kTooLong) {
      bad_command(kLineTooLong);
      continue;
    }
    if (line.code == IoCode::kTimeout) {
      // RFC 1939 section 3: close without a response and without removing any message.
      log_.info("timeout account={} ip={}", login_.account, login_.ip);
      exit_code_ = session_exit::kGone;
      return;
    }
    if (line.code != IoCode::kOk) {
      log_.info("disconnect account={} ip={}", login_.account, login_.ip);
      exit_code_ = session_exit::kGone;
      return;
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
    if (found == nullptr) {
      bad_command(kUnknownCommand);
      continue;
    }
    (this->*found->handler)(arg);
  }
}

void Pop3Session::count_visible(size_t* messages, uint64_t* octets) const {
  *messages = 0;
  *octets = 0;
  for (const auto& e : messages_) {
    if (e.deleted) continue;
    ++*messages;
    *octets += e.message.octets;
  }
}

Pop3Session::Entry* Pop3Session::find_message(std::string_view token) {
  auto number = small_number(token);
  if (!number) {
    bad_command(kSyntax);
    return nullptr;
  }
  if (*number == 0 || *number > messages_.size()) {
    reply(kNoSuchMessage);
    return nullptr;
  }
  Entry& e = messages_[*number - 1];
  if (e.deleted) {  // RFC 1939 section 5: a deleted message may not be referred to
    reply(fmt::format(fmt::runtime(kAlreadyDeletedFormat), *number));
    return nullptr;
  }
  return &e;
}

void Pop3Session::stat(std::string_view arg) {
  if (!words(arg).empty()) return bad_command(kSyntax);
  size_t count;
  uint64_t octets;
  count_visible(&count, &octets);
  reply(fmt::format(fmt::runtime(kStatFormat), count, octets));
}

void Pop3Session::list(std::string_view arg) {
  auto w = words(arg);
  if (w.size() > 1) return bad_command(kSyntax);
  if (w.size() == 1) {
    Entry* e = find_message(w[0]);
    if (e != nullptr) reply(fmt::format(fmt::runtime(kListOneFormat), number_of(*e), e->message.octets));
    return;
  }
  size_t count;
  uint64_t octets;
  count_visible(&count, &octets);
  reply(fmt::format(fmt::runtime(kListFollows), count, octets));
  for (size_t i = 0; i < messages_.size(); ++i)
    if (!messages_[i].deleted) out_.put(fmt::format("{} {}\r\n", i + 1, messages_[i].message.octets));
  out_.put(".\r\n");
}

void Pop3Session::uidl(std::string_view arg) {
  auto w = words(arg);
  if (w.size() > 1) return bad_command(kSyntax);
  if (w.size() == 1) {
    Entry* e = find_message(w[0]);
    if (e != nullptr) reply(fmt::format(fmt::runtime(kUidlOneFormat), number_of(*e), e->message.uid));
    return;
  }
  reply(kUidlFollows);
  for (size_t i = 0; i < messages_.size(); ++i)
    if (!messages_[i].deleted) out_.put(fmt::format("{} {}\r\n", i + 1, messages_[i].message.uid));
  out_.put(".\r\n");
}

void Pop3Session::retr(std::string_view arg) {
  auto w = words(arg);
  if (w.size() != 1) return bad_command(kSyntax);
  Entry* e = find_message(w[0]);
  if (e == nullptr) return;
  size_t number = number_of(*e);
  send_message(number, *e, fmt::format(fmt::runtime(kRetrFormat), e->message.octets), std::nullopt);
}

void Pop3Session::top(std::string_view arg) {
  auto w = words(arg);
  if (w.size() != 2) return bad_command(kSyntax);
  auto lines = small_number(w[1]);
  if (!lines) return bad_command(kSyntax);
  Entry* e = find_message(w[0]);
  if (e == nullptr) return;
  size_t number = number_of(*e);
  send_message(number, *e, kTopFollows, *lines);
}

void Pop3Session::send_message(size_t number, Entry& entry, std::string_view first_line,
                               std::optional<uint64_t> body_lines) {
  std::string path = maildir_ + "/cur/" + entry.message.name;
  auto fd = open_file(path, O_RDONLY | O_NOFOLLOW);
  if (!fd) {
    bool gone = fd.error().errno_value() == ENOENT;
    log_.warn("account={} {}", login_.account, fd.error().message());
    return reply(fmt::format(fmt::runtime(gone ? kGoneFormat : kUnreadableFormat), number));
  }
  reply(first_line);
  MultilineEncoder encoder(body_lines);
  std::string chunk(kChunk, '\0');
  std::string wire;
  off_t offset = 0;
  while (!encoder.done()) {
    ssize_t n = ::pread(fd->get(), chunk.data(), chunk.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // The +OK may be on its way: the answer cannot be completed, so the session ends
      // (nothing is deleted) rather than send a message cut short as if it were whole.
      log_.warn("account={} read {}: {}", login_.account, path, std::strerror(errno));
      done_ = true;
      exit_code_ = session_exit::kTrouble;
      return;
    }
    if (n == 0) break;
    offset += n;
    wire.clear();
    encoder.feed(std::string_view(chunk.data(), static_cast<size_t>(n)), wire);
    out_.put(wire);
    // A 20 MB message never sits in memory whole: a full chunk goes out at once, with its own
    // write deadline (a client that stops reading for the idle time is gone). The rest waits
    // for the terminator, so that a small message leaves in one write: a write of the last
    // bytes alone could wait for the client's delayed ACK (Nagle).
    if (out_.pending() >= kChunk && !flush()) {
      log_.info("disconnect account={} ip={} reason=write", login_.account, login_.ip);
      done_ = true;
      exit_code_ = session_exit::kGone;
      return;
    }
  }
  wire.clear();
  encoder.finish(wire);
  out_.put(wire);
}

void Pop3Session::dele(std::string_view arg) {
  auto w = words(arg);
  if (w.size() != 1) return bad_command(kSyntax);
  Entry* e = find_message(w[0]);
  if (e == nullptr) return;
  // RFC 1939 section 5: only marked; the file goes in the UPDATE state after QUIT.
  e->deleted = true;
  reply(fmt::format(fmt::runtime(kDeletedFormat), number_of(*e)));
}

void Pop3Session::noop(std::string_view arg) {
  if (!words(arg).empty()) return bad_command(kSyntax);
  reply(kOk);
}

void Pop3Session::rset(std::string_view arg) {
  if (!words(arg).empty()) return bad_command(kSyntax);
  for (auto& e : messages_) e.deleted = false;
  size_t count;
  uint64_t octets;
  count_visible(&count, &octets);
  reply(fmt::format(fmt::runtime(kRsetFormat), count, octets));
}

void Pop3Session::quit(std::string_view) {
  // RFC 1939 section 6: the UPDATE state.
  std::vector<std::string> names;
  for (const auto& e : messages_)
    if (e.deleted) names.push_back(e.message.name);
  size_t failed = remove_messages(maildir_, names);
  if (failed == 0) {
    log_.info("quit account={} ip={} deleted={}", login_.account, login_.ip, names.size());
    reply(kBye);
  } else {
    log_.warn("quit account={} ip={} deleted={} not_removed={}", login_.account, login_.ip, names.size(),
              failed);
    reply(kNotRemoved);
  }
  done_ = true;
  exit_code_ = session_exit::kQuit;
}

void Pop3Session::capa(std::string_view arg) {
  if (!words(arg).empty()) return bad_command(kSyntax);
  reply(kCapaFollows);
  out_.put("TOP\r\nUIDL\r\nUSER\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\n");
  // RFC 2449 section 6.5: in the TRANSACTION state the value is this user's.
  if (interval_ > 0) out_.put(fmt::format("LOGIN-DELAY {}\r\n", interval_));
  out_.put("IMPLEMENTATION tikimail\r\n.\r\n");
}

void Pop3Session::not_in_this_state(std::string_view) { bad_command(kNotInThisState); }

}  // namespace tikimail
