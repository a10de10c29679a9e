// common/queue_proto.cpp: running a queue chain, and the envelope codec.
#include "common/queue_proto.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/address.h"
#include "common/spawn.h"

extern char** environ;

namespace tikimail {

std::string new_message_id() {
  uint32_t random = 0;
  while (::getrandom(&random, sizeof random, 0) != sizeof random) {
  }
  return fmt::format("{:08x}{:08x}", static_cast<uint32_t>(::time(nullptr)), random);
}

bool valid_message_id(std::string_view id) {
  if (id.size() != 16) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string encode_envelope(const Envelope& env) {
  std::string out;
  out.reserve(env.sender.size() + 3 + env.rcpts.size() * 32);
  out.push_back('F');
  if (!env.mark.empty()) out.append(1, kMarkByte).append(env.mark).append(1, kMarkByte);
  out.append(env.sender).push_back('\0');
  for (const auto& r : env.rcpts) {
    out.push_back('T');
    out.append(r).push_back('\0');
  }
  out.push_back('\0');
  return out;
}

namespace {

// Takes a leading "\x01<mark>\x01" off env->sender into env->mark. False for a malformed
// mark or a \x01 anywhere else in the sender.
bool split_mark(Envelope* env) {
  std::string& s = env->sender;
  if (s.empty() || s.front() != kMarkByte) return s.find(kMarkByte) == std::string::npos;
  size_t end = s.find(kMarkByte, 1);
  if (end == std::string::npos || end == 1 || end - 1 > kMaxMark) return false;
  for (size_t i = 1; i < end; ++i)
    if (s[i] < 'a' || s[i] > 'z') return false;
  env->mark = s.substr(1, end - 1);
  s.erase(0, end + 1);
  return s.find(kMarkByte) == std::string::npos;
}

}  // namespace

EnvelopeDecode decode_envelope(std::string_view bytes) {
  EnvelopeDecode d;
  auto field = [&](char tag, std::string* out) -> bool {
    if (bytes.empty() || bytes.front() != tag) return false;
    size_t nul = bytes.find('\0');
    if (nul == std::string_view::npos) return false;
    out->assign(bytes.substr(1, nul - 1));
    bytes.remove_prefix(nul + 1);
    return true;
  };
  if (!field('F', &d.envelope.sender) || !split_mark(&d.envelope)) {
    d.exit_code = queue_exit::kEnvelopeFormat;
    return d;
  }
  while (!bytes.empty() && bytes.front() == 'T') {
    std::string rcpt;
    if (!field('T', &rcpt) || rcpt.empty()) {
      d.exit_code = queue_exit::kEnvelopeFormat;
      return d;
    }
    d.envelope.rcpts.push_back(std::move(rcpt));
  }
  // The envelope ends with one more NUL and nothing after it; at least one recipient.
  if (bytes != std::string_view("\0", 1) || d.envelope.rcpts.empty()) {
    d.exit_code = queue_exit::kEnvelopeFormat;
    return d;
  }
  if (d.envelope.sender.size() > kMaxPath) d.exit_code = queue_exit::kAddressTooLong;
  for (const auto& r : d.envelope.rcpts)
    if (r.size() > kMaxPath) d.exit_code = queue_exit::kAddressTooLong;
  return d;
}

bool QueueOutcome::permanent() const {
  switch (exit_code) {
    case queue_exit::kAddressTooLong:
    case queue_exit::kRefused:
    case queue_exit::kEnvelopeFormat:
      return true;
    case queue_exit::kCustomReply:
      return !custom_reply.empty() && custom_reply.front() == 'D';
    default:
      return false;
  }
}

std::string QueueOutcome::describe() const {
  switch (exit_code) {
    case queue_exit::kOk: return "2.0.0 ok";
    case queue_exit::kAddressTooLong: return "5.1.3 address too long";
    case queue_exit::kRefused: return "5.3.0 mail server permanently rejected message";
    case queue_exit::kNoMemory: return "4.3.0 out of memory";
    case queue_exit::kTimeout: return "4.3.0 timeout in the queue";
    case queue_exit::kWriteError: return "4.3.0 queue write error or disk full";
    case queue_exit::kReadError: return "4.3.0 queue could not read the message";
    case queue_exit::kConfig: return "4.3.0 queue could not read its configuration";
    case queue_exit::kNetwork: return "4.3.0 network trouble in the queue";
    case queue_exit::kEnvelopeFormat: return "5.5.4 envelope format error";
    case queue_exit::kCustomReply:
      if (custom_reply.size() > 1) return custom_reply.substr(1);
      return "4.3.0 queue gave an empty reply";
    default:
      if (exit_code >= 61 && exit_code <= 66) return "4.3.0 trouble with the queue directory";
      if (exit_code >= 71 && exit_code <= 74) return "4.3.0 mail server temporarily rejected message";
      return "4.3.0 queue bug";
  }
}

Result<QueueClient> QueueClient::start(const std::vector<std::string>& argv,
                                       const std::vector<std::string>& env_extra) {
  if (argv.empty()) return Status::permanent("no queue program configured");
  if (argv.size() != 1 || !argv[0].starts_with(kQueueServerPrefix)) return start_program(argv, env_extra);
  QueueClient c;
  c.server_ = argv[0].substr(kQueueServerPrefix.size());
  if (c.server_.empty() || c.server_.size() >= sizeof(sockaddr_un::sun_path))
    return Status::permanent("bad queue server socket path: " + argv[0]);
  for (const auto& e : env_extra)
    if (e.starts_with("MSGID=")) c.msgid_ = e.substr(6);
  int fd = ::memfd_create("queue-message", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return Status::from_errno("memfd_create", errno);
  c.message_ = Fd(fd);
  return c;
}

Result<QueueClient> QueueClient::start_program(const std::vector<std::string>& argv,
                                               const std::vector<std::string>& env_extra) {
  auto message = make_pipe();
  auto envelope = make_pipe();
  auto reply = make_pipe();
  if (!message) return message.error();
  if (!envelope) return envelope.error();
  if (!reply) return reply.error();

  // Message on 0, envelope on 1, reply on 6; everything else of ours is close-on-exec.
  const FdPlacement fds[] = {{message->read.get(), 0}, {envelope->read.get(), 1}, {reply->write.get(), 6}};
  auto pid = spawn(argv, environment_with(env_extra), fds);
  if (!pid) return pid.error();
  QueueClient c;
  c.pid_ = *pid;
  c.message_ = std::move(message->write);
  c.envelope_ = std::move(envelope->write);
  c.reply_ = std::move(reply->read);
  return c;
}

Status QueueClient::switch_to_program(const std::string& why) {
  std::vector<std::string> env;
  if (!msgid_.empty()) env.push_back("MSGID=" + msgid_);
  auto program = start_program({std::string(kQueueServerFallback)}, env);
  trouble_ = fmt::format("{}: {}", why, kQueueServerFallback);
  if (!program) return program.error();
  Fd kept = std::move(message_);
  server_.clear();
  pid_ = std::exchange(program->pid_, -1);
  message_ = std::move(program->message_);
  envelope_ = std::move(program->envelope_);
  reply_ = std::move(program->reply_);
  std::string block(std::min<uint64_t>(held_, 65536), '\0');
  for (uint64_t offset = 0; offset < held_;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(block.size(), held_ - offset));
    if (Status s = pread_exact(kept.get(), block.data(), n, offset, held_, "the kept message"); !s) return s;
    if (Status s = write_all(message_.get(), std::string_view(block.data(), n)); !s) return s;
    offset += n;
  }
  return Status::ok();
}

QueueClient::~QueueClient() { abort(); }

Status QueueClient::flush() {
  if (failed_ || buffer_.empty()) return Status::ok();
  if (!server_.empty() && held_ + buffer_.size() > kQueueServerMemoryMax) {
    // Too big to keep in memory for the server: the queue program takes it as it arrives.
    if (Status s = switch_to_program(fmt::format("message over {} bytes", kQueueServerMemoryMax)); !s) {
      buffer_.clear();
      failed_ = true;
      return s;
    }
  }
  Status s = write_all(message_.get(), buffer_);
  if (!server_.empty()) held_ += buffer_.size();
  buffer_.clear();
  if (!s) failed_ = true;
  return s;
}

void QueueClient::write(std::string_view bytes) {
  if (failed_) return;
  buffer_.append(bytes);
  if (buffer_.size() >= 65536) (void)flush();
}

QueueOutcome QueueClient::finish_at_server(const Envelope& env, Deadline deadline) {
  QueueOutcome out;
  (void)flush();
  if (server_.empty()) return finish_program(env, deadline);  // the flush handed it to the program
  if (failed_) {  // the memfd could not take the message, or the program to take it did not start
    out.exit_code = trouble_.empty() ? queue_exit::kNoMemory : queue_exit::kQueueTrouble;
    out.trouble = trouble_.empty() ? "cannot hold the message for the queue server" : trouble_ + ": not started";
    return out;
  }
  // Both files sealed: what the server reads can no longer change under it.
  constexpr int kSeals = F_SEAL_SEAL | kQueueServerSeals;
  Fd envelope(::memfd_create("queue-envelope", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  Status s = envelope.valid() ? write_all(envelope.get(), encode_envelope(env))
                              : Status::from_errno("memfd_create", errno);
  if (s && (::lseek(message_.get(), 0, SEEK_SET) != 0 || ::lseek(envelope.get(), 0, SEEK_SET) != 0 ||
            ::fcntl(message_.get(), F_ADD_SEALS, kSeals) != 0 || ::fcntl(envelope.get(), F_ADD_SEALS, kSeals) != 0))
    s = Status::from_errno("sealing the message for the queue server", errno);
  if (!s) {
    out.exit_code = queue_exit::kNoMemory;
    out.trouble = s.message();
    return out;
  }
  Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) {
    out.exit_code = queue_exit::kQueueTrouble;
    out.trouble = std::string("socket: ") + std::strerror(errno);
    return out;
  }
  // connect(2) waits while the server's backlog is full; SO_SNDTIMEO bounds that wait.
  int ms = std::max(deadline.poll_ms(), 1);
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  (void)::setsockopt(sock.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, server_.data(), server_.size());
  int rc;
  while ((rc = ::connect(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr)) != 0 && errno == EINTR) {
  }
  if (rc != 0) {
    int err = errno;
    std::string why = fmt::format("queue server {}: {}", server_, std::strerror(err));
    if (err == ENOENT || err == ECONNREFUSED) {  // not running: the program takes the message
      Status started = switch_to_program(why);
      if (pid_ > 0) {
        if (!started) failed_ = true;  // it sees no envelope and commits nothing
        return finish_program(env, deadline);
      }
      out.exit_code = queue_exit::kQueueTrouble;
      out.trouble = why + "; " + started.message();
      return out;
    }
    out.exit_code = err == EAGAIN ? queue_exit::kTimeout : queue_exit::kQueueTrouble;
    out.trouble = why;
    return out;
  }
  Fd message = std::move(message_);
  const int fds[2] = {message.get(), envelope.get()};
  if (s = send_with_fds(sock.get(), msgid_ + "\n", fds, "send to the queue server"); !s) {
    out.exit_code = queue_exit::kQueueTrouble;
    out.trouble = s.message();
    return out;
  }
  (void)message.close();
  (void)envelope.close();
  for (;;) {
    pollfd p{sock.get(), POLLIN, 0};
    int n = ::poll(&p, 1, deadline.poll_ms());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      out.exit_code = queue_exit::kTimeout;
      out.trouble = "no answer from the queue server";
      return out;
    }
    unsigned char code = 0;
    ssize_t got = ::read(sock.get(), &code, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got == 1) {
      out.exit_code = code;
      // The queue itself never answers 82: that needs a reply text, and a server sends none.
      if (out.exit_code == queue_exit::kCustomReply) out.exit_code = queue_exit::kBug;
    } else {
      out.exit_code = queue_exit::kBug;  // it ended without an answer, like a killed program
      out.trouble = "the queue server closed without an answer";
    }
    return out;
  }
}

QueueOutcome QueueClient::finish(const Envelope& env, Deadline deadline) {
  QueueOutcome out = server_.empty() ? finish_program(env, deadline) : finish_at_server(env, deadline);
  if (out.trouble.empty()) out.trouble = trouble_;
  return out;
}

QueueOutcome QueueClient::finish_program(const Envelope& env, Deadline deadline) {
  QueueOutcome out;
  (void)flush();
  (void)message_.close();
  if (!failed_) (void)write_all(envelope_.get(), encode_envelope(env));
  (void)envelope_.close();
  // The reply pipe reaches EOF when the whole chain has exited.
  std::string reply;
  for (;;) {
    pollfd p{reply_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, deadline.poll_ms());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // the chain hung: give up, tell the client to retry
      abort();
      out.exit_code = queue_exit::kTimeout;
      return out;
    }
    char buf[512];
    ssize_t got = ::read(reply_.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (reply.size() < 1024) reply.append(buf, static_cast<size_t>(got));
  }
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  if (WIFEXITED(status)) out.exit_code = WEXITSTATUS(status);
  else out.exit_code = queue_exit::kBug;  // killed by a signal: treat as temporary
  if (out.exit_code == queue_exit::kCustomReply) {
    // One line, D or Z, no control bytes: the text goes straight into an SMTP reply.
    size_t end = reply.find_first_of(std::string_view("\r\n\0", 3));
    reply = reply.substr(0, end);
    for (char& c : reply)
      if (static_cast<unsigned char>(c) < 32 || static_cast<unsigned char>(c) > 126) c = '?';
    if (reply.empty() || (reply[0] != 'D' && reply[0] != 'Z')) reply = "Z4.3.0 malformed reply from the queue chain";
    out.custom_reply = reply;
  }
  return out;
}

void QueueClient::abort() {
  if (!server_.empty()) {  // nothing was handed over yet
    failed_ = true;
    (void)message_.close();
    return;
  }
  if (pid_ <= 0) return;
  // No envelope: every stage sees its input end without one, removes what it wrote and exits
  // 54 (queue/README.md). Give it that chance; SIGKILL only for a chain that hangs, since a
  // killed queue leaves its half-written file in tmp/ for a day.
  (void)message_.close();
  (void)envelope_.close();
  Deadline deadline = Deadline::after_seconds(10);
  for (;;) {  // the reply pipe reaches EOF when the whole chain has exited
    pollfd p{reply_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, deadline.poll_ms());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::kill(pid_, SIGKILL);
      break;
    }
    char buf[256];
    ssize_t got = ::read(reply_.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
  }
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

Status queue_whole_message(const std::vector<std::string>& chain, const Envelope& env, std::string_view message) {
  auto client = QueueClient::start(chain, {"MSGID=" + new_message_id()});
  if (!client) return client.error();
  client->write(message);
  QueueOutcome outcome = client->finish(env, Deadline::after_seconds(kChainAnswerSeconds));
  if (outcome.ok()) return Status::ok();
  std::string why = outcome.describe() + (outcome.trouble.empty() ? "" : " (" + outcome.trouble + ")");
  if (outcome.permanent()) return Status::permanent("the queue refused it: " + why);
  return Status::temporary("the queue could not take it: " + why);
}

}  // namespace tikimail
