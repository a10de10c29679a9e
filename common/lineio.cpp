// common/lineio.cpp: deadline-bounded reads and writes over poll(2).
#include "common/lineio.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace tikimail {

int Deadline::poll_ms() const {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(at_ - Clock::now()).count();
  if (left <= 0) return 0;
  return left > 1000000000 ? 1000000000 : static_cast<int>(left);
}

// Waits until `fd` is ready for `events` or the deadline passes.
static IoCode wait_for(int fd, short events, Deadline deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, deadline.poll_ms());
    if (n > 0) return IoCode::kOk;  // readable, writable, or hung up: the syscall says which
    if (n == 0) return IoCode::kTimeout;
    if (errno != EINTR) return IoCode::kError;
  }
}

IoCode LineReader::fill(Deadline deadline) {
  if (start_ == end_) start_ = end_ = 0;
  if (end_ == buf_.size()) {  // keep the unread tail, make room behind it
    std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  for (;;) {
    IoCode w = wait_for(fd_, POLLIN, deadline);
    if (w != IoCode::kOk) return w;
    ssize_t n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
    if (n > 0) {
      end_ += static_cast<size_t>(n);
      return IoCode::kOk;
    }
    if (n == 0) return IoCode::kEof;
    if (errno == EINTR || errno == EAGAIN) continue;
    return IoCode::kError;
  }
}

Line LineReader::read_line(Deadline deadline, size_t max) {
  bool too_long = false;
  size_t scanned = 0;  // bytes after start_ known to hold no LF
  for (;;) {
    char* begin = buf_.data() + start_;
    void* lf = std::memchr(begin + scanned, '\n', end_ - start_ - scanned);
    if (lf != nullptr) {
      size_t len = static_cast<size_t>(static_cast<char*>(lf) - begin);
      Line line;
      line.crlf = len > 0 && begin[len - 1] == '\r';
      line.text = std::string_view(begin, line.crlf ? len - 1 : len);
      start_ += len + 1;
      if (too_long || len + 1 + (line.crlf ? 0 : 1) > max) {
        line.code = IoCode::kTooLong;
        line.text = {};
      }
      return line;
    }
    scanned = end_ - start_;
    if (scanned >= max) {  // over the limit: drop what we have, keep looking for the LF
      too_long = true;
      start_ = end_ = 0;
      scanned = 0;
    }
    IoCode code = fill(deadline);
    if (code != IoCode::kOk) return Line{code, {}, false};
    scanned = std::min(scanned, end_ - start_);
  }
}

IoCode LineReader::peek(Deadline deadline, std::string_view* bytes) {
  if (start_ == end_) {
    IoCode code = fill(deadline);
    if (code != IoCode::kOk) return code;
  }
  *bytes = std::string_view(buf_.data() + start_, end_ - start_);
  return IoCode::kOk;
}

IoCode LineWriter::flush(Deadline deadline) {
  size_t done = 0;
  while (done < out_.size()) {
    ssize_t n = ::write(fd_, out_.data() + done, out_.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      IoCode w = wait_for(fd_, POLLOUT, deadline);
      if (w != IoCode::kOk) return w;
      continue;
    }
    out_.clear();
    return IoCode::kError;
  }
  out_.clear();
  return IoCode::kOk;
}

void linger_close(int in_fd, int out_fd, Deadline deadline, size_t max_bytes) {
  ::shutdown(out_fd, SHUT_WR);
  char buf[4096];
  size_t total = 0;
  while (total < max_bytes && wait_for(in_fd, POLLIN, deadline) == IoCode::kOk) {
    ssize_t n = ::read(in_fd, buf, sizeof buf);
    if (n == 0) return;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return;
    }
    total += static_cast<size_t>(n);
  }
}

Status set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return Status::from_errno("fcntl O_NONBLOCK", errno);
  return Status::ok();
}

}  // namespace tikimail
