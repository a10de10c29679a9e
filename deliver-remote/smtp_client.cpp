// deliver-remote/smtp_client.cpp: reply parsing and the client session.
#include "deliver-remote/smtp_client.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/address.h"

namespace tikimail {

// ---- replies ----

std::string Reply::status() const {
  if (!lines.empty() && lines[0].size() > 4) {
    std::string_view text = std::string_view(lines[0]).substr(4);
    std::string_view token = text.substr(0, text.find(' '));
    if (valid_status_code(token) && token[0] == static_cast<char>('0' + klass())) return std::string(token);
  }
  return fmt::format("{}.0.0", klass());
}

std::string Reply::text() const {
  std::string out;
  for (const std::string& line : lines) {
    if (!out.empty()) out += " / ";
    out += line;
    if (out.size() > kMaxResultText) break;  // encode_result cuts there anyway
  }
  return out;
}

Reply::Error ReplyReader::read_line(Deadline deadline, std::string_view* line) {
  size_t scanned = 0;
  for (;;) {
    const char* begin = buf_.data() + start_;
    const void* lf = std::memchr(begin + scanned, '\n', end_ - start_ - scanned);
    if (lf != nullptr) {
      size_t len = static_cast<size_t>(static_cast<const char*>(lf) - begin);
      if (len + 1 > kMaxReplyLine) return Reply::Error::kTooLong;
      start_ += len + 1;
      if (len > 0 && begin[len - 1] == '\r') --len;
      *line = std::string_view(begin, len);
      return Reply::Error::kNone;
    }
    scanned = end_ - start_;
    if (scanned >= kMaxReplyLine) return Reply::Error::kTooLong;
    if (start_ > 0) {  // keep the partial line at the front of the buffer
      std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
    }
    size_t n = 0;
    IoCode code = conn_->read_some(buf_.data() + end_, buf_.size() - end_, deadline, &n);
    if (code == IoCode::kTimeout) return Reply::Error::kTimeout;
    if (code != IoCode::kOk) return Reply::Error::kLost;
    end_ += n;
  }
}

Reply ReplyReader::read(Deadline deadline) {
  Reply reply;
  for (;;) {
    if (reply.lines.size() == kMaxReplyLines) {
      reply.error = Reply::Error::kTooManyLines;
      return reply;
    }
    std::string_view line;
    if (Reply::Error e = read_line(deadline, &line); e != Reply::Error::kNone) {
      reply.error = e;
      return reply;
    }
    // Reply-line: 3 digits, then "-" (more lines follow), " " or nothing (the last line).
    int code = 0;
    bool digits = line.size() >= 3 && line[0] >= '1' && line[0] <= '5' && line[1] >= '0' && line[1] <= '9' &&
                  line[2] >= '0' && line[2] <= '9';
    if (digits) code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    char sep = line.size() > 3 ? line[3] : ' ';
    if (!digits || (sep != ' ' && sep != '-') || (!reply.lines.empty() && code != reply.code)) {
      reply.error = Reply::Error::kMalformed;
      return reply;
    }
    reply.code = code;
    reply.lines.emplace_back(line);
    if (sep == ' ') return reply;
  }
}

size_t ReplyReader::discard_pending() {
  size_t n = end_ - start_;
  start_ = end_ = 0;
  return n;
}

Extensions parse_ehlo(const Reply& reply) {
  Extensions ext;
  for (size_t i = 1; i < reply.lines.size(); ++i) {
    std::string_view text = std::string_view(reply.lines[i]).substr(std::min<size_t>(4, reply.lines[i].size()));
    size_t sp = text.find(' ');
    std::string keyword = ascii_lower(text.substr(0, sp));
    std::string_view param = sp == std::string_view::npos ? std::string_view() : text.substr(sp + 1);
    if (keyword == "pipelining") {
      ext.pipelining = true;
    } else if (keyword == "8bitmime") {
      ext.eightbitmime = true;
    } else if (keyword == "starttls") {
      ext.starttls = true;
    } else if (keyword == "size") {
      ext.size = true;
      param = param.substr(0, param.find(' '));
      uint64_t n = 0;
      auto [end, ec] = std::from_chars(param.data(), param.data() + param.size(), n);
      ext.size_limit = (ec == std::errc() && end == param.data() + param.size()) ? n : 0;
    }
  }
  return ext;
}

void Timeouts::replace(long seconds) {
  greeting = helo = mail = rcpt = data = dot = seconds;
  data_block = std::min(data_block, seconds);
  quit = std::min(quit, seconds);
}

// ---- the session ----

namespace {

using Kind = RemoteResult::Kind;

const char* reply_trouble(Reply::Error e) {
  switch (e) {
    case Reply::Error::kTimeout: return "timeout waiting for the reply to";
    case Reply::Error::kLost: return "connection lost while waiting for the reply to";
    case Reply::Error::kTooLong: return "line too long from remote, in the reply to";
    case Reply::Error::kMalformed: return "malformed reply from remote, to";
    case Reply::Error::kTooManyLines: return "too many lines from remote, in the reply to";
    case Reply::Error::kNone: break;
  }
  return "no reply to";
}

class Session {
 public:
  Session(Connection& conn, const Target& target, const SmtpEnvelope& envelope, const MessageSource& message,
          const SessionConfig& config, const Log& log, bool allow_tls)
      : conn_(conn), reader_(&conn), target_(target), envelope_(envelope), message_(message), config_(config),
        t_(config.timeouts), log_(log), allow_tls_(allow_tls), label_(target.label()) {}

  HostOutcome run();

 private:
  RemoteResult local(Kind kind, std::string status, std::string text) const {
    RemoteResult r;
    r.kind = kind;
    r.status = std::move(status);
    r.host = label_;
    r.text = std::move(text);
    return r;
  }
  // The reply as a recipient's result: 2xx K, 4xx Z, 5xx D, anything else a temporary
  // protocol error.
  RemoteResult from_reply(const Reply& reply) const {
    RemoteResult r;
    r.host = label_;
    r.from_remote = true;
    r.text = reply.text();
    r.status = reply.status();
    switch (reply.klass()) {
      case 2: r.kind = Kind::kDelivered; break;
      case 5: r.kind = Kind::kPermanent; break;
      case 4: r.kind = Kind::kTemporary; break;
      default: r.kind = Kind::kTemporary; r.status = "4.5.0"; break;
    }
    return r;
  }
  // A failure as a failure, never a success.
  RemoteResult failure_from_reply(const Reply& reply) const {
    RemoteResult r = from_reply(reply);
    if (r.kind == Kind::kDelivered) {
      r.kind = Kind::kTemporary;
      r.status = "4.5.0";
    }
    return r;
  }
  static RemoteResult temporary(RemoteResult r) {
    r.kind = Kind::kTemporary;
    if (!r.status.empty() && r.status[0] != '4') r.status[0] = '4';
    return r;
  }
  RemoteResult trouble(const Reply& reply, std::string_view step) {
    broken_ = true;
    std::string_view status = reply.error == Reply::Error::kTimeout || reply.error == Reply::Error::kLost ? "4.4.2"
                                                                                                          : "4.5.0";
    return local(Kind::kTemporary, std::string(status), fmt::format("{} {}", reply_trouble(reply.error), step));
  }
  RemoteResult write_trouble(IoCode code, std::string_view step) {
    broken_ = true;
    return local(Kind::kTemporary, "4.4.2",
                 fmt::format("{} {}", code == IoCode::kTimeout ? "timeout sending" : "connection lost while sending", step));
  }

  HostOutcome next_address(RemoteResult failure) {
    quit();
    HostOutcome out;
    out.next = HostOutcome::Next::kNextAddress;
    out.failure = std::move(failure);
    return out;
  }
  HostOutcome final_all(const RemoteResult& r) {
    results_.assign(envelope_.rcpts.size(), r);
    return finish();
  }
  HostOutcome finish() {
    quit();
    HostOutcome out;
    out.next = HostOutcome::Next::kFinal;
    out.results = std::move(results_);
    return out;
  }
  // Gives every accepted recipient r.
  void decide_accepted(const RemoteResult& r) {
    for (size_t i = 0; i < results_.size(); ++i)
      if (accepted_[i]) results_[i] = r;
  }

  Reply command(const std::string& line, long seconds) {
    IoCode w = conn_.write_all(line + "\r\n", Deadline::after_seconds(seconds));
    if (w != IoCode::kOk) {
      Reply r;
      r.error = w == IoCode::kTimeout ? Reply::Error::kTimeout : Reply::Error::kLost;
      return r;
    }
    return reader_.read(Deadline::after_seconds(seconds));
  }
  void quit() {
    if (broken_) return;
    broken_ = true;
    if (conn_.write_all("QUIT\r\n", Deadline::after_seconds(t_.quit)) == IoCode::kOk)
      (void)reader_.read(Deadline::after_seconds(t_.quit));
  }

  bool hello(HostOutcome* failed);
  bool starttls(HostOutcome* failed);
  bool mail_rcpt(HostOutcome* done);
  HostOutcome data();
  enum class SendError { kNone, kRead, kWrite, kTimeout };
  SendError send_message(std::string* why);

  Connection& conn_;
  ReplyReader reader_;
  const Target& target_;
  const SmtpEnvelope& envelope_;
  const MessageSource& message_;
  const SessionConfig& config_;
  const Timeouts& t_;
  const Log& log_;
  bool allow_tls_;
  std::string label_;
  bool broken_ = false;  // no QUIT: the connection is gone or out of step
  Extensions ext_;
  IoCode send_message_code_ = IoCode::kOk;
  std::vector<RemoteResult> results_;
  std::vector<bool> accepted_;
};

HostOutcome Session::run() {
  Reply greeting = reader_.read(Deadline::after_seconds(t_.greeting));
  if (!greeting.ok()) return next_address(trouble(greeting, "the greeting"));
  if (greeting.klass() != 2) {
    if (greeting.code == 421) broken_ = true;
    RemoteResult r = failure_from_reply(greeting);
    // A 5xx greeting stays permanent: it decides when it is the last address (README).
    return next_address(greeting.klass() == 5 ? r : temporary(r));
  }
  HostOutcome failed;
  if (!hello(&failed)) return failed;
  if (!starttls(&failed)) return failed;

  const uint64_t size = message_.info.crlf_size;
  if (ext_.size && ext_.size_limit > 0 && size > ext_.size_limit)
    return final_all(local(Kind::kPermanent, "5.3.4",
                           fmt::format("message size {} exceeds the limit {} of {}", size, ext_.size_limit, label_)));
  HostOutcome done;
  if (!mail_rcpt(&done)) return done;
  return data();
}

bool Session::hello(HostOutcome* failed) {
  Reply ehlo = command("EHLO " + config_.helo, t_.helo);
  if (!ehlo.ok()) return *failed = next_address(trouble(ehlo, "EHLO")), false;
  if (ehlo.klass() == 2) {
    ext_ = parse_ehlo(ehlo);
    return true;
  }
  if (ehlo.klass() != 5 || ehlo.code == 421) {
    if (ehlo.code == 421) broken_ = true;
    return *failed = next_address(temporary(failure_from_reply(ehlo))), false;
  }
  Reply helo = command("HELO " + config_.helo, t_.helo);
  if (!helo.ok()) return *failed = next_address(trouble(helo, "HELO")), false;
  if (helo.klass() != 2) {
    if (helo.code == 421) broken_ = true;
    return *failed = next_address(temporary(failure_from_reply(helo))), false;
  }
  ext_ = Extensions();
  return true;
}

bool Session::starttls(HostOutcome* failed) {
  if (!allow_tls_ || config_.tls == TlsLevel::kNone) return true;
  const bool required = config_.tls == TlsLevel::kEncrypt || config_.tls == TlsLevel::kVerify;
  if (config_.tls_ctx == nullptr) {
    if (!required) return true;
    return *failed = next_address(local(Kind::kTemporary, "4.7.5", "TLS is required but not available here")), false;
  }
  if (!ext_.starttls) {
    if (!required) return true;
    return *failed = next_address(local(Kind::kTemporary, "4.7.5",
                                        fmt::format("TLS is required but {} does not offer STARTTLS", label_))),
           false;
  }
  Reply reply = command("STARTTLS", t_.helo);
  if (!reply.ok()) return *failed = next_address(trouble(reply, "STARTTLS")), false;
  if (reply.code == 421) {
    broken_ = true;
    return *failed = next_address(temporary(failure_from_reply(reply))), false;
  }
  if (reply.klass() != 2) {
    if (required)
      return *failed = next_address(local(Kind::kTemporary, "4.7.5",
                                          fmt::format("TLS is required but {} refused STARTTLS: {}", label_, reply.text()))),
             false;
    log_.warn("{} starttls refused host={} reply=\"{}\": continuing without TLS", config_.msgid, label_,
              log_safe(reply.text()));
    return true;
  }
  if (size_t n = reader_.discard_pending(); n > 0)  // RFC 3207 5: nothing sent before TLS counts
    log_.warn("{} starttls discarded={} bytes sent ahead by host={}", config_.msgid, n, label_);
  TlsPeer peer{target_.name, target_.ip, config_.tls == TlsLevel::kVerify};
  auto session = conn_.start_tls(config_.tls_ctx, peer, Deadline::after_seconds(t_.helo));
  if (!session) {
    broken_ = true;  // the connection is in the middle of a handshake
    RemoteResult r = local(Kind::kTemporary, "4.7.5", fmt::format("TLS with {} failed: {}", label_, session.error().message()));
    if (!required) {
      log_.warn("{} tls failed host={} reason=\"{}\": retrying without TLS", config_.msgid, label_,
                log_safe(session.error().message()));
      HostOutcome out;
      out.next = HostOutcome::Next::kRetryWithoutTls;
      out.failure = std::move(r);
      *failed = std::move(out);
      return false;
    }
    log_.warn("{} tls failed host={} reason=\"{}\"", config_.msgid, label_, log_safe(session.error().message()));
    return *failed = next_address(std::move(r)), false;
  }
  log_.info("{} tls host={} version={} cipher={} verified={}", config_.msgid, label_, session->version,
            session->cipher, session->verified ? "yes" : "no");
  Reply ehlo = command("EHLO " + config_.helo, t_.helo);  // RFC 3207 4.2: forget what was offered before
  if (!ehlo.ok()) return *failed = next_address(trouble(ehlo, "EHLO after STARTTLS")), false;
  if (ehlo.klass() != 2) {
    if (ehlo.code == 421) broken_ = true;
    return *failed = next_address(temporary(failure_from_reply(ehlo))), false;
  }
  ext_ = parse_ehlo(ehlo);
  ext_.starttls = false;
  return true;
}

// MAIL and the RCPTs. False when the session is over (*done holds the outcome). Until MAIL has
// a reply (other than 421) the next address may be tried; from then on the answers are final.
bool Session::mail_rcpt(HostOutcome* done) {
  const size_t n = envelope_.rcpts.size();
  results_.assign(n, RemoteResult());
  accepted_.assign(n, false);
  std::string mail = "MAIL FROM:" + envelope_.sender;
  if (ext_.size) mail += fmt::format(" SIZE={}", message_.info.crlf_size);
  if (message_.info.eight_bit && ext_.eightbitmime) mail += " BODY=8BITMIME";

  Reply mail_reply;
  if (ext_.pipelining) {  // RFC 2920: MAIL and every RCPT in one write, replies in order
    std::string batch = mail + "\r\n";
    for (const std::string& rcpt : envelope_.rcpts) batch += "RCPT TO:" + rcpt + "\r\n";
    IoCode w = conn_.write_all(batch, Deadline::after_seconds(t_.mail));
    if (w != IoCode::kOk) return *done = next_address(write_trouble(w, "MAIL")), false;
    mail_reply = reader_.read(Deadline::after_seconds(t_.mail));
  } else {
    mail_reply = command(mail, t_.mail);
  }
  if (!mail_reply.ok()) return *done = next_address(trouble(mail_reply, "MAIL")), false;
  if (mail_reply.code == 421) {
    broken_ = true;
    return *done = next_address(temporary(failure_from_reply(mail_reply))), false;
  }
  const bool mail_ok = mail_reply.klass() == 2;
  if (!mail_ok && !ext_.pipelining) return *done = final_all(failure_from_reply(mail_reply)), false;

  for (size_t i = 0; i < n; ++i) {
    Reply reply = ext_.pipelining ? reader_.read(Deadline::after_seconds(t_.rcpt))
                                  : command("RCPT TO:" + envelope_.rcpts[i], t_.rcpt);
    if (!reply.ok() || reply.code == 421) {
      // The connection is over: this recipient, the rest, and those accepted so far get the trouble.
      RemoteResult r = reply.ok() ? temporary(failure_from_reply(reply)) : trouble(reply, "RCPT");
      if (reply.code == 421) broken_ = true;
      for (size_t j = i; j < n; ++j) results_[j] = r;
      if (!mail_ok) return *done = final_all(failure_from_reply(mail_reply)), false;
      for (size_t j = 0; j < i; ++j)
        if (accepted_[j]) {  // no DATA possible on a broken connection
          results_[j] = r;
          accepted_[j] = false;
        }
      return *done = finish(), false;
    }
    if (reply.klass() == 2) accepted_[i] = true;
    else results_[i] = failure_from_reply(reply);
  }
  if (!mail_ok) return *done = final_all(failure_from_reply(mail_reply)), false;
  if (std::none_of(accepted_.begin(), accepted_.end(), [](bool a) { return a; }))
    return *done = finish(), false;  // every RCPT refused: QUIT, no RSET needed
  return true;
}

HostOutcome Session::data() {
  Reply reply = command("DATA", t_.data);
  if (!reply.ok()) {
    decide_accepted(trouble(reply, "DATA"));
    return finish();
  }
  if (reply.code != 354) {
    if (reply.code == 421) broken_ = true;
    decide_accepted(failure_from_reply(reply));
    return finish();
  }
  std::string why;
  switch (send_message(&why)) {
    case SendError::kNone: break;
    case SendError::kRead:
      broken_ = true;  // the peer never gets the final dot, so it stores nothing
      decide_accepted(local(Kind::kTemporary, "4.3.0", "cannot read the queued message: " + why));
      return finish();
    case SendError::kWrite:
    case SendError::kTimeout:
      decide_accepted(write_trouble(send_message_code_, "the message"));
      return finish();
  }
  Reply final = reader_.read(Deadline::after_seconds(t_.dot));
  if (!final.ok()) {
    // RFC 1047: the peer may have taken the message and we never heard; a retry may duplicate it.
    RemoteResult r = trouble(final, "the message");
    r.text += " (it may have been delivered: a retry can duplicate it)";
    decide_accepted(r);
    return finish();
  }
  if (final.code == 421) broken_ = true;
  decide_accepted(from_reply(final));
  return finish();
}

Session::SendError Session::send_message(std::string* why) {
  DataEncoder encoder;
  std::string block;
  std::string out;
  out.reserve(3 * kMessageBlock);
  auto flush = [&]() {
    IoCode code = conn_.write_all(out, Deadline::after_seconds(t_.data_block));
    out.clear();
    send_message_code_ = code;
    return code == IoCode::kOk;
  };
  // Exactly message_.bytes, as the first pass measured: what follows in the file (the queue
  // entry's envelope and trailer) never reaches the peer.
  for (uint64_t offset = 0;;) {
    auto n = read_message_block(message_.fd, message_.bytes, offset, &block);
    if (!n) {
      *why = n.error().message();
      return SendError::kRead;
    }
    if (*n == 0) break;
    encoder.feed(std::string_view(block.data(), *n), &out);
    offset += *n;
    if (out.size() >= kMessageBlock && !flush()) return SendError::kWrite;
  }
  encoder.finish(&out);
  if (!flush()) return SendError::kWrite;
  return SendError::kNone;
}

}  // namespace

HostOutcome run_smtp(Connection& conn, const Target& target, const SmtpEnvelope& envelope, const MessageSource& message,
                     const SessionConfig& config, const Log& log, bool allow_tls) {
  Session session(conn, target, envelope, message, config, log, allow_tls);
  return session.run();
}

}  // namespace tikimail
