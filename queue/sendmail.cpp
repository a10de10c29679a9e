// queue/sendmail.cpp: the injection itself: stdin to the queue chain.
#include "queue/sendmail.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/mman.h>
#include <sysexits.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/control.h"
#include "common/datetime.h"
#include "common/dsn.h"
#include "common/log.h"
#include "common/remote_result.h"
#include "common/queue_proto.h"
#include "queue/headers.h"
#include "queue/inject.h"
#include "queue/message_input.h"

namespace tikimail {

namespace {

enum class Read { kMore, kEnd, kError };

// Reads one chunk of stdin into `input`, appending its LF form to *out. kEnd at EOF (the last
// line completed) or after the lone '.' line; kError with errno set.
Read read_chunk(int fd, MessageInput& input, std::string* out) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Read::kError;
    if (n == 0) {
      input.finish(out);
      return Read::kEnd;
    }
    input.feed(std::string_view(buf, static_cast<size_t>(n)), out);
    return input.ended() ? Read::kEnd : Read::kMore;
  }
}

// Reads and discards the rest of the input, so that the writer sees no broken pipe.
void drain(int fd) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EINTR)) return;
  }
}

// The chain's stderr: an anonymous file, shown only when the chain refuses the message.
// `queue` logs one line per message on stderr for smtpd's logger; a cron job that mails
// would otherwise mail that line back to its owner every time.
class ChainStderr {
 public:
  ChainStderr() : file_(::memfd_create("sendmail-chain-stderr", MFD_CLOEXEC)) {}
  // Runs `start` with fd 2 pointing at the file, so that the chain inherits it.
  template <typename Start>
  auto around(Start start) {
    Fd saved(file_.valid() ? ::fcntl(2, F_DUPFD_CLOEXEC, 3) : -1);
    if (saved.valid()) ::dup2(file_.get(), 2);
    auto result = start();
    if (saved.valid()) ::dup2(saved.get(), 2);
    return result;
  }
  // Copies what the chain wrote (at most 8 KiB) to our stderr.
  void show() const {
    if (!file_.valid()) return;
    char buf[8192];
    ssize_t n = ::pread(file_.get(), buf, sizeof buf, 0);
    if (n > 0) (void)write_all(2, std::string_view(buf, static_cast<size_t>(n)));
  }

 private:
  Fd file_;
};

// The header section a notice about a refused message carries (text/rfc822-headers).
constexpr size_t kMaxNoticeHeaders = 64 * 1024;

// A message sendmail could not queue goes back to its sender as a notice (common/dsn.h), as
// if it had bounced after acceptance: a CGI program rarely reads our exit status. Not for the
// null sender, and not when no recipient is known. Failures are logged, never fatal.
void bounce_refused(const SendmailConfig& config, const std::string& msgid, const std::string& sender,
                    const std::vector<std::string>& rcpts, std::string_view headers, const std::string& status,
                    const std::string& why, const Log& log) {
  if (sender.empty() || rcpts.empty()) return;
  DsnInput in;
  in.reporting_mta = config.me;
  in.queue_id = msgid;
  in.to = sender;
  in.original_sender = sender;
  in.arrival = ::time(nullptr);
  for (const auto& r : rcpts) in.rcpts.push_back(DsnRecipient{r, status, "", false, why, in.arrival});
  // The header section, an empty line and a one-byte stand-in body: one byte over the limit
  // given, so the notice carries the header section as text/rfc822-headers, never more.
  std::string original(headers.substr(0, kMaxNoticeHeaders));
  if (!original.empty() && original.back() != '\n') original += '\n';
  in.max_original = original.size() + 1;
  original += "\n.";
  Fd file(::memfd_create("sendmail-refused-headers", MFD_CLOEXEC));
  if (!file.valid() || !write_all(file.get(), original)) {
    log.warn("{} no notice to {}: {}", msgid, log_safe(sender), std::strerror(errno));
    return;
  }
  auto notice = compose_dsn(in, file.get(), original.size(), in.arrival);
  if (!notice) {
    log.warn("{} no notice to {}: {}", msgid, log_safe(sender), notice.error().message());
    return;
  }
  Status queued = queue_whole_message(config.chain, Envelope{"", {sender}, std::string(envelope_mark::kBounce)}, *notice);
  if (!queued) log.warn("{} no notice to {}: {}", msgid, log_safe(sender), queued.message());
  else log.info("{} bounced to={} reason=\"{}\"", msgid, log_safe(sender), log_safe(why));
}

}  // namespace

Result<SendmailConfig> SendmailConfig::load() {
  SendmailConfig c;
  c.me = local_hostname();
  auto databytes = read_control_uint("control/databytes", c.databytes);
  if (!databytes) return databytes.error();
  c.databytes = *databytes;
  auto chain = read_control_words("control/queuechain", {"bin/queue"});
  if (!chain) return chain.error();
  c.chain = std::move(*chain);
  return c;
}

Invoker Invoker::current() {
  Invoker who;
  who.uid = ::getuid();
  if (const passwd* pw = ::getpwuid(who.uid); pw != nullptr && pw->pw_name != nullptr) who.login = pw->pw_name;
  return who;
}

int run_sendmail(const SendmailOptions& opts, const SendmailConfig& config, const Invoker& invoker,
                 int in_fd, const Log& log) {
  const std::string login_address = default_sender(invoker.login, invoker.uid, config.me);
  std::string sender = login_address;
  if (opts.sender) {
    auto s = envelope_sender(*opts.sender, config.me);
    if (!s) {
      log.fatal("{}", s.error().message());
      return EX_DATAERR;
    }
    sender = *s;
  }
  auto rcpts = argument_recipients(opts.recipients, config.me);
  if (!rcpts) {
    log.fatal("{}", rcpts.error().message());
    return EX_DATAERR;
  }
  if (!opts.recipients_from_headers && rcpts->empty()) {
    log.fatal("no recipients: name them as arguments, or use -t");
    return EX_USAGE;
  }

  bool input_done = false;  // EOF or the dot line was read: nothing left to drain
  auto refuse = [&](int code, std::string_view why) {
    log.fatal("{}", why);
    if (!input_done) drain(in_fd);
    return code;
  };
  const std::string too_big = fmt::format(
      "message refused: larger than {} bytes (control/databytes, counted with CRLF line ends)", config.databytes);
  const std::string too_big_notice = fmt::format(
      "the message is larger than the limit of {} bytes for one message; it was not sent", config.databytes);
  const std::string msgid = new_message_id();

  // The header section first: -t needs its recipients, and the added fields depend on it.
  MessageInput input(opts.dot_ends_input);
  HeaderEnd header_end;
  std::string text;
  while (!header_end.scan(text)) {
    Read r = read_chunk(in_fd, input, &text);
    if (r == Read::kError) return refuse(EX_TEMPFAIL, fmt::format("read standard input: {}", std::strerror(errno)));
    if (input.size() > config.databytes) {
      int code = refuse(EX_DATAERR, too_big);
      bounce_refused(config, msgid, sender, *rcpts, text, "5.3.4", too_big_notice, log);
      return code;
    }
    if (r == Read::kEnd) {
      input_done = true;
      header_end.at_eof(text);
      break;
    }
  }
  std::vector<HeaderField> fields = split_fields(std::string_view(text).substr(0, header_end.header_bytes()));
  if (opts.recipients_from_headers) {
    if (Status s = header_recipients(fields, config.me, &*rcpts); !s) return refuse(EX_DATAERR, s.message());
    if (rcpts->empty()) return refuse(EX_DATAERR, "no recipients in To, Cc or Bcc, and none as arguments");
  }

  HeaderAdditions add;
  add.uid = invoker.uid;
  add.date = rfc5322_date(::time(nullptr));
  add.message_id = fmt::format("<{}@{}>", msgid, config.me);
  add.from = from_value(sender.empty() ? login_address : sender, opts.full_name.value_or(""));

  ChainStderr chain_stderr;
  auto chain = chain_stderr.around([&] { return QueueClient::start(config.chain, {"MSGID=" + msgid}); });
  if (!chain) return refuse(EX_TEMPFAIL, fmt::format("cannot start the queue chain: {}", chain.error().message()));
  std::string header_section = compose_header(fields, opts.recipients_from_headers, add);
  chain->write(header_section);
  chain->write(std::string_view(text).substr(header_end.body_offset()));
  text.clear();
  text.shrink_to_fit();
  std::string body;
  while (!input_done) {
    body.clear();
    Read r = read_chunk(in_fd, input, &body);
    if (r == Read::kError) {
      chain->abort();  // the chain sees no envelope and commits nothing
      return refuse(EX_TEMPFAIL, fmt::format("read standard input: {}", std::strerror(errno)));
    }
    if (input.size() > config.databytes) {
      chain->abort();
      int code = refuse(EX_DATAERR, too_big);
      bounce_refused(config, msgid, sender, *rcpts, header_section, "5.3.4", too_big_notice, log);
      return code;
    }
    chain->write(body);
    input_done = r == Read::kEnd;
  }
  QueueOutcome outcome = chain->finish(Envelope{sender, *rcpts}, Deadline::after_seconds(kChainAnswerSeconds));
  if (!outcome.ok()) {
    chain_stderr.show();
    log.fatal("{} not queued: {} (queue status {})", msgid, outcome.describe(), outcome.exit_code);
    if (outcome.permanent()) {
      std::string reply = outcome.describe();  // "5.3.4 text": the status, then why
      std::string status = reply.substr(0, reply.find(' '));
      bounce_refused(config, msgid, sender, *rcpts, header_section, valid_status_code(status) ? status : "5.0.0",
                     "the mail system refused the message: " + reply, log);
    }
    return sendmail_exit_code(outcome);
  }
  return EX_OK;
}

}  // namespace tikimail
