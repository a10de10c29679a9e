// pop3d/command_reader.cpp: peek for the LF, then read exactly up to it. Every byte read
// belongs to the current line, so waiting for the rest of a line never spins on bytes that
// poll(2) reports but we have not taken.
#include "pop3d/command_reader.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tikimail {

namespace {

IoCode wait_readable(int fd, Deadline deadline) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, deadline.poll_ms());
    if (n > 0) return IoCode::kOk;  // readable or hung up: the read says which
    if (n == 0) return IoCode::kTimeout;
    if (errno != EINTR) return IoCode::kError;
  }
}

}  // namespace

CommandReader::CommandReader(int fd) : fd_(fd) {
  struct stat st;
  socket_ = ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

Line CommandReader::read(Deadline deadline, size_t max) {
  line_.clear();
  too_long_ = false;
  max_ = max;
  for (;;) {
    IoCode w = wait_readable(fd_, deadline);
    if (w != IoCode::kOk) return Line{w, {}, false};
    bool got_lf = false;
    IoCode code = socket_ ? take_socket(&got_lf) : take_byte(&got_lf);
    if (code == IoCode::kTimeout) continue;  // nothing there after all (EAGAIN): wait again
    if (code != IoCode::kOk) return Line{code, {}, false};
    if (!got_lf) continue;
    Line line;
    line_.pop_back();  // the LF
    line.crlf = !line_.empty() && line_.back() == '\r';
    if (line.crlf) line_.pop_back();
    if (too_long_ || line_.size() + 2 > max) {
      line.code = IoCode::kTooLong;
      return line;
    }
    line.text = line_;
    return line;
  }
}

// Appends what the socket holds up to and including the first LF, and nothing after it.
IoCode CommandReader::take_socket(bool* got_lf) {
  char buf[512];
  ssize_t n;
  do {
    n = ::recv(fd_, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return IoCode::kEof;
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? IoCode::kTimeout : IoCode::kError;
  const void* lf = std::memchr(buf, '\n', static_cast<size_t>(n));
  size_t want = lf ? static_cast<size_t>(static_cast<const char*>(lf) - buf) + 1 : static_cast<size_t>(n);
  size_t got = 0;
  while (got < want) {  // the peeked bytes are there: this does not wait
    ssize_t r = ::recv(fd_, buf + got, want - got, MSG_DONTWAIT);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r == 0 ? IoCode::kEof : IoCode::kError;
    got += static_cast<size_t>(r);
  }
  *got_lf = lf != nullptr;
  if (!too_long_) line_.append(buf, want);
  if (!too_long_ && line_.size() > max_ + 1) {  // +1: a bare LF line may be max bytes plus LF
    too_long_ = true;
    line_.clear();
  }
  if (too_long_ && *got_lf) line_.assign("\n");  // read() strips it; the code is kTooLong
  return IoCode::kOk;
}

IoCode CommandReader::take_byte(bool* got_lf) {
  char c;
  ssize_t n;
  do {
    n = ::read(fd_, &c, 1);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return IoCode::kEof;
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? IoCode::kTimeout : IoCode::kError;
  *got_lf = c == '\n';
  if (!too_long_) line_.push_back(c);
  if (!too_long_ && line_.size() > max_ + 1) {
    too_long_ = true;
    line_.clear();
  }
  if (too_long_ && *got_lf) line_.assign("\n");
  return IoCode::kOk;
}

}  // namespace tikimail
