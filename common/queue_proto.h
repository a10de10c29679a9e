// common/queue_proto.h: the queue protocol (DESIGN section 3), qmail-queue compatible.
// Message on fd 0, envelope on fd 1 (`F<sender>\0T<rcpt>\0...\0`), the exit status is the
// answer, and with status 82 the exact reply is on fd 6 (`D<text>` permanent, `Z<text>`
// temporary). This file has both sides: the client that runs a chain, and the envelope codec.
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/lineio.h"
#include "common/status.h"

namespace tikimail {

namespace queue_exit {
inline constexpr int kOk = 0;
inline constexpr int kAddressTooLong = 11;
inline constexpr int kRefused = 31;        // permanently refused
inline constexpr int kNoMemory = 51;
inline constexpr int kTimeout = 52;
inline constexpr int kWriteError = 53;     // disk full or write error
inline constexpr int kReadError = 54;      // could not read the message or envelope
inline constexpr int kConfig = 55;         // could not read configuration
inline constexpr int kNetwork = 56;
inline constexpr int kQueueTrouble = 61;   // 61-66: queue directory trouble, fork failure
inline constexpr int kTempRefused = 71;    // 71-74: temporarily refused
inline constexpr int kBug = 81;
inline constexpr int kCustomReply = 82;    // the reply text is on fd 6
inline constexpr int kEnvelopeFormat = 91;
}  // namespace queue_exit

// How long a caller waits for a chain's answer once the message and envelope are written.
inline constexpr long kChainAnswerSeconds = 600;

// The mark of a message the system generated itself (bounce, virus notice) lives in the
// envelope, never in a header (DESIGN section 3): the sender field is then
// `F\x01<mark>\x01<sender>\0`, where <mark> is lowercase letters ("bounce", "doublebounce",
// "delay"). \x01 can never be part of an address (smtpd and sendmail refuse control bytes),
// so no mail client can set it; a sender field with \x01 anywhere else is a format error (91).
// A local user who runs bin/queue directly can, so a mark only steers notices (who gets one)
// and must never exempt a message from a stage (scan, ratelimit).
inline constexpr char kMarkByte = '\x01';
inline constexpr size_t kMaxMark = 32;
namespace envelope_mark {
inline constexpr std::string_view kBounce = "bounce";              // a failure notice (DSN)
inline constexpr std::string_view kDelay = "delay";                // a delay warning (DSN)
inline constexpr std::string_view kDoubleBounce = "doublebounce";  // a notice about a failed notice
}  // namespace envelope_mark

// A message id: 16 lowercase hex digits, 8 of the time in seconds and 8 random. smtpd makes
// one per transaction and hands it to the chain as MSGID, so every log line of one message
// carries the same id; `queue` names the entry after it.
std::string new_message_id();
bool valid_message_id(std::string_view id);

struct Envelope {
  std::string sender;               // "" for the null sender
  std::vector<std::string> rcpts;   // envelope form, unquoted: "user@example.test"
  std::string mark = {};            // "" for ordinary mail, else who made it (envelope_mark)
};

// Encodes `F<sender>\0T<rcpt>\0...\0`.
std::string encode_envelope(const Envelope& env);
// Decodes the same; kPermanent on a malformed envelope (exit 91), kTooLong fields (exit 11).
struct EnvelopeDecode {
  int exit_code = queue_exit::kOk;  // 0, 11 or 91
  Envelope envelope;
};
EnvelopeDecode decode_envelope(std::string_view bytes);

// What a chain said about one message.
struct QueueOutcome {
  int exit_code = queue_exit::kBug;
  std::string custom_reply;  // the text after D/Z with status 82
  std::string trouble;       // for the caller's log: why the handoff failed, or went to the program
  bool ok() const { return exit_code == queue_exit::kOk; }
  bool permanent() const;    // 11, 31, 91, 82 with D
  // An SMTP reply text with its enhanced code, e.g. "4.3.0 queue write error or disk full".
  std::string describe() const;
};

// A chain of the one word "unix:PATH" is the resident queue server (`queue -l PATH`,
// queue/README.md "The server") instead of a program to start. The message then collects in
// an anonymous file (a memfd) as it arrives, and finish() seals that file and one holding the
// envelope against any change and hands both to the server: one sendmsg(2) on a new
// connection to the unix socket PATH, whose data is the message id and a newline and whose
// SCM_RIGHTS are exactly two fds, message then envelope. The server reads both as the queue
// program reads fds 0 and 1 and answers with one byte, the exit code; a connection closed
// without it is status 81. Nothing reaches the server before finish(), so a slow client never
// holds a server process.
// The queue program itself (kQueueServerFallback) takes the message instead, fed first with
// what was kept, when the message grows past kQueueServerMemoryMax (so that a session holds at
// most that much in memory) or when the server cannot be reached (no socket, nobody
// listening); QueueOutcome::trouble then says why.
inline constexpr std::string_view kQueueServerPrefix = "unix:";
inline constexpr size_t kQueueServerRequestMax = 64;  // the request's data bytes, at most
inline constexpr uint64_t kQueueServerMemoryMax = 1 << 20;
inline constexpr std::string_view kQueueServerFallback = "bin/queue";
// The seals the server requires on both files (the client also adds F_SEAL_SEAL).
inline constexpr int kQueueServerSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

// Runs one queue chain (argv words; argv[0] is exec'd, each stage execs the rest), or hands
// the message to the queue server (kQueueServerPrefix).
class QueueClient {
 public:
  // Starts the chain with `env_extra` ("MSGID=...") added to the environment.
  static Result<QueueClient> start(const std::vector<std::string>& argv,
                                   const std::vector<std::string>& env_extra);
  QueueClient(QueueClient&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)), server_(std::exchange(other.server_, {})),
        msgid_(std::move(other.msgid_)), held_(other.held_), trouble_(std::move(other.trouble_)),
        message_(std::move(other.message_)),
        envelope_(std::move(other.envelope_)), reply_(std::move(other.reply_)),
        buffer_(std::move(other.buffer_)), failed_(other.failed_) {}
  QueueClient& operator=(QueueClient&&) = delete;
  ~QueueClient();

  // Streams message bytes; a failure (the chain exited early) is remembered and the
  // rest is dropped, so the caller can keep reading its input to the end.
  void write(std::string_view bytes);
  // Ends the message, writes the envelope, and waits (at most until `deadline`)
  // for the chain's answer.
  QueueOutcome finish(const Envelope& env, Deadline deadline);
  // Gives up on the message: the chain sees no envelope and commits nothing.
  void abort();

 private:
  QueueClient() = default;
  Status flush();
  static Result<QueueClient> start_program(const std::vector<std::string>& argv,
                                           const std::vector<std::string>& env_extra);
  QueueOutcome finish_at_server(const Envelope& env, Deadline deadline);
  QueueOutcome finish_program(const Envelope& env, Deadline deadline);
  // Server mode to program mode: starts kQueueServerFallback and feeds it what the memfd holds.
  Status switch_to_program(const std::string& why);
  pid_t pid_ = -1;
  std::string server_;  // the server's socket path, in server mode; message_ is then a memfd
  std::string msgid_;   // MSGID for the server, or for the program it falls back to
  uint64_t held_ = 0;   // bytes in the memfd
  std::string trouble_;  // why the message went to the program instead of the server
  Fd message_, envelope_, reply_;
  std::string buffer_;
  bool failed_ = false;
};

// Queues one whole message the system made (a notice) through `chain` with a fresh MSGID:
// ok when queued; a permanent error when the chain refused it for good; temporary otherwise.
Status queue_whole_message(const std::vector<std::string>& chain, const Envelope& env, std::string_view message);

}  // namespace tikimail
