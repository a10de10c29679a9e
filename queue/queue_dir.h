// queue/queue_dir.h: storing one message in the queue directory as one entry file with the
// commit order of queue/README.md (tmp/<id>: message, envelope, trailer; fsync; rename to
// todo/<id>; fsync todo/), and the envelope as the queue protocol delivers it on fd 1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/lineio.h"
#include "common/log.h"
#include "common/queue_file.h"
#include "common/queue_proto.h"

namespace tikimail {

// How long `queue` waits for its input, message and envelope together (qmail-queue's alarm).
inline constexpr long kQueueReadSeconds = 86400;
// Room above control/databytes for the headers the chain stages add (Received, scan marks).
inline constexpr uint64_t kChainHeaderRoom = 65536;
// An envelope larger than kMaxEnvelope (common/queue_file.h) is refused permanently (31).
// The mode of every file `queue` writes; main sets umask 027 so that nothing gets wider.
inline constexpr int kQueueFileMode = 0640;

// The envelope id from the MSGID variable when it is a valid id (16 lowercase hex digits),
// else a fresh one (new_message_id). `msgid_env` may be null (variable not set).
std::string choose_message_id(const char* msgid_env);

// Finds where an envelope ends while its bytes arrive. Feed it everything read so far (the
// same, growing buffer each time); it only looks at bytes it has not seen.
class EnvelopeScanner {
 public:
  enum class State { kIncomplete, kComplete, kMalformed };
  State scan(std::string_view bytes);
  // With kComplete: the envelope's length, its final NUL included.
  size_t length() const { return length_; }

 private:
  size_t field_ = 0;    // where the field being read starts
  size_t length_ = 0;
};

// What reading the envelope gave.
struct EnvelopeRead {
  int exit_code = queue_exit::kOk;  // 0; 11, 31, 52, 54 or 91 with `error` saying why
  std::string error;
  Envelope envelope;
};

// Reads the envelope from `fd` up to its final NUL (bytes after it are left unread), waiting
// at most until `deadline`. EOF before the final NUL means the caller gave up on the message
// (QueueClient::abort): 54, nothing may be committed. A malformed envelope is 91, an address
// longer than 256 bytes 11, more than kMaxEnvelope bytes (its final NUL included) 31, the
// deadline 52, a read error 54.
EnvelopeRead read_envelope(int fd, Deadline deadline);

// What storing one message gave.
struct StoreOutcome {
  int exit_code = queue_exit::kBug;  // 0 committed; otherwise a queue_exit code, nothing left
  std::string error;                 // why, for the log line, when exit_code is not 0
  uint64_t bytes = 0;                // message bytes stored
  size_t rcpts = 0;                  // envelope recipients
};

// The queue directory `dir` ("queue" relative to the prefix) with tmp/, todo/, done/ and the
// trigger fifo.
class QueueDir {
 public:
  explicit QueueDir(std::string dir) : dir_(std::move(dir)) {}

  // Reads the message from `message_fd` to EOF, then the envelope from `envelope_fd`, and
  // commits entry `id` (a valid message id). A message above `max_bytes` is refused (31)
  // as soon as it passes the limit. Every read waits at most until `deadline` (52).
  // On exit code 0 todo/<id> holds the message, the encoded envelope and the trailer
  // (common/queue_file.h), on disk with its name. On any other code everything this call
  // created is removed again: an id already present in todo/ or done/ is refused (64) and
  // never overwritten.
  // Codes: 31 too big or envelope too big, 11/91 envelope, 52 deadline, 53 write or sync
  // failure (disk full), 54 read failure or no envelope, 62 queue dir, 63 tmp/<id>, 64 the
  // id in use or the rename into todo/ failed.
  StoreOutcome store(int message_fd, int envelope_fd, const std::string& id, uint64_t max_bytes,
                     Deadline deadline) const;

  // Wakes the queue runner: one byte into the fifo `trigger`, without blocking. No reader
  // (ENXIO), a full fifo or a missing fifo are fine: the runner also scans on its own.
  void wake() const;

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// What the queue program does with fds 0 and 1 and the server with a handoff's two files:
// store() into `queue`, then wake the runner and log `<id> queued bytes=N rcpts=N<note>`, or
// log `warning: <id> not queued status=N<note> why`. Returns the exit code.
int store_and_log(const QueueDir& queue, int message_fd, int envelope_fd, const std::string& id,
                  uint64_t max_bytes, Deadline deadline, std::string_view note, const Log& log);

// The SIGALRM handler of the program and the server's workers: the backstop for what poll(2)
// cannot bound (a hung disk under write or fsync). It can only leave (exit 52): what it leaves
// in tmp/ is garbage deliver removes; an entry already renamed into todo/ is delivered, and a
// caller told 52 (or, from the server, 81) may send it again: a duplicate, never a loss.
void exit_on_alarm(int);

}  // namespace tikimail
