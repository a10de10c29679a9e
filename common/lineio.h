// common/lineio.h: network line I/O with a deadline on every wait and a limit on every line.
// A Deadline is computed once per command (or once per DATA chunk), never per read.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tikimail {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;
  static Deadline after(std::chrono::milliseconds ms) { return Deadline(Clock::now() + ms); }
  static Deadline after_seconds(long s) { return after(std::chrono::seconds(s)); }
  // Milliseconds left for poll(2): 0 once passed.
  int poll_ms() const;
  bool passed() const { return Clock::now() >= at_; }

 private:
  explicit Deadline(Clock::time_point at) : at_(at) {}
  Clock::time_point at_;
};

enum class IoCode { kOk, kTooLong, kTimeout, kEof, kError };

// One line as read: the bytes before LF with a trailing CR removed.
struct Line {
  IoCode code = IoCode::kOk;
  std::string_view text;  // valid until the next call on the reader
  bool crlf = false;      // the line ended in CRLF (false: a bare LF)
};

// Reads from one fd (which may be non-blocking) through a fixed buffer.
class LineReader {
 public:
  explicit LineReader(int fd, size_t capacity = 16384) : fd_(fd) { buf_.resize(capacity); }

  // Reads one line of at most `max` bytes counting its CRLF. A longer line is
  // read and thrown away up to its LF (or the deadline), then kTooLong.
  Line read_line(Deadline deadline, size_t max);
  // Raw access for DATA: the bytes buffered now, reading more if none are.
  // kOk with a non-empty view, or kTimeout / kEof / kError.
  IoCode peek(Deadline deadline, std::string_view* bytes);
  void consume(size_t n) { start_ += n; }
  // Bytes received but not yet consumed (a pipelining client sent ahead).
  size_t pending() const { return end_ - start_; }
  // Throws away what is buffered (used after STARTTLS: RFC 3207 section 5).
  void discard_pending() { start_ = end_ = 0; }

 private:
  IoCode fill(Deadline deadline);
  int fd_;
  std::string buf_;
  size_t start_ = 0, end_ = 0;
};

// Buffered replies; flush() waits for the peer at most until the deadline.
class LineWriter {
 public:
  explicit LineWriter(int fd) : fd_(fd) {}
  void put(std::string_view bytes) { out_.append(bytes); }
  IoCode flush(Deadline deadline);
  bool empty() const { return out_.empty(); }
  size_t pending() const { return out_.size(); }

 private:
  int fd_;
  std::string out_;
};

// Ends a connection we close ourselves (421, too many errors): our FIN first, then whatever
// the client still sends is read and dropped until its FIN, the deadline or `max_bytes`, so
// that unread input does not make the kernel answer with a reset, which can destroy the
// last reply still in flight. Harmless on pipes (no shutdown there).
void linger_close(int in_fd, int out_fd, Deadline deadline, size_t max_bytes = 1 << 20);

// Sets O_NONBLOCK so that no read or write can outlive its deadline.
Status set_nonblocking(int fd);

}  // namespace tikimail
