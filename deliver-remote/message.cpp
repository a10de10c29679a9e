// deliver-remote/message.cpp: CRLF conversion, dot-stuffing, the measuring first pass, and
// the block reads that stop at the message's length.
#include "deliver-remote/message.h"

#include <unistd.h>

#include <algorithm>
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

Result<size_t> read_message_block(int fd, uint64_t bytes, uint64_t offset, std::string* block) {
  block->resize(kMessageBlock);
  size_t want = static_cast<size_t>(std::min<uint64_t>(kMessageBlock, bytes - std::min(bytes, offset)));
  if (want == 0) return size_t{0};
  for (;;) {
    ssize_t n = ::pread(fd, block->data(), want, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno("read message", errno);
    }
    // The entry file holds more than the message, so EOF here means it is not what deliver
    // said: never send part of a message as if it were the whole.
    if (n == 0) return Status::temporary(fmt::format("read message: it ends after {} of {} bytes", offset, bytes));
    return static_cast<size_t>(n);
  }
}

Result<MessageInfo> scan_message(int fd, uint64_t bytes) {
  DataEncoder encoder;
  std::string block;
  std::string scratch;
  for (uint64_t offset = 0;;) {
    auto n = read_message_block(fd, bytes, offset, &block);
    if (!n) return n.error();
    if (*n == 0) break;
    scratch.clear();
    encoder.feed(std::string_view(block.data(), *n), &scratch);
    offset += *n;
  }
  scratch.clear();
  encoder.finish(&scratch);
  return MessageInfo{encoder.size(), encoder.eight_bit()};
}

}  // namespace tikimail
