// deliver-remote/message.cpp: CRLF conversion, dot-stuffing and the measuring first pass.
#include "deliver-remote/message.h"

#include <unistd.h>

#include <cerrno>

namespace tikimail {

void DataEncoder::line_end(std::string* out) {
  out->append("\r\n");
  size_ += 2;
  line_start_ = true;
  line_len_ = 0;
}

void DataEncoder::feed(std::string_view in, std::string* out) {
  for (char c : in) {
    if (pending_cr_) {
      pending_cr_ = false;
      line_end(out);             // CRLF, or a lone CR made a line end
      if (c == '\n') continue;   // the LF of that CRLF
    }
    if (c == '\r') {
      pending_cr_ = true;
      continue;
    }
    if (c == '\n') {
      line_end(out);
      continue;
    }
    if (line_len_ >= kMaxDataLine) {
      // RFC 5321 4.5.3.1.6: the line is full. The space keeps the rest part of the same
      // header field (RFC 5322 folding) and can never be taken for a stuffed dot.
      out->append("\r\n ");
      size_ += 3;
      line_len_ = 1;
      line_start_ = false;
    }
    if (line_start_ && c == '.') {  // stuffed: not part of the size, but of the line
      out->push_back('.');
      ++line_len_;
    }
    if (static_cast<unsigned char>(c) > 127) eight_bit_ = true;
    out->push_back(c);
    ++size_;
    ++line_len_;
    line_start_ = false;
  }
}

void DataEncoder::finish(std::string* out) {
  if (pending_cr_) {
    pending_cr_ = false;
    line_end(out);
  }
  if (!line_start_) line_end(out);  // the message did not end with a line end
  out->append(".\r\n");
}

Result<MessageInfo> scan_message(int fd) {
  if (::lseek(fd, 0, SEEK_SET) < 0) return Status::from_errno("lseek message", errno);
  DataEncoder encoder;
  std::string block(kMessageBlock, '\0');
  std::string scratch;
  for (;;) {
    ssize_t n = ::read(fd, block.data(), block.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno("read message", errno);
    }
    if (n == 0) break;
    scratch.clear();
    encoder.feed(std::string_view(block.data(), static_cast<size_t>(n)), &scratch);
  }
  scratch.clear();
  encoder.finish(&scratch);
  if (::lseek(fd, 0, SEEK_SET) < 0) return Status::from_errno("lseek message", errno);
  return MessageInfo{encoder.size(), encoder.eight_bit()};
}

}  // namespace tikimail
