// queue/message_input.h: a message as sendmail reads it on stdin: CRLF line ends become LF,
// a line holding a lone '.' ends the input unless -i, and the size is counted as RFC 1870
// counts it (every line plus 2 for its CRLF). Lines have no length limit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tikimail {

class MessageInput {
 public:
  // `dot_ends`: a line of exactly "." (LF or CRLF) ends the message (sendmail without -i).
  explicit MessageInput(bool dot_ends) : dot_ends_(dot_ends) {}

  // Appends the LF form of `bytes` to *out. Chunks may split lines, CRLFs and the dot line
  // anywhere. After ended(), further bytes are ignored.
  void feed(std::string_view bytes, std::string* out);
  // At EOF: a last line without its line end gets an LF (and is counted).
  void finish(std::string* out);

  // True once the lone '.' line was read (it is not part of the message).
  bool ended() const { return ended_; }
  // The RFC 1870 size of what was read so far: each line's bytes plus 2, a line still
  // being read included as if it ended now. The dot line is not counted.
  uint64_t size() const { return size_ + (in_line() ? line_bytes_ + 2 : 0); }

 private:
  bool in_line() const { return line_bytes_ > 0 || pending_dot_ || pending_cr_; }
  void put(char c, std::string* out);
  void end_line(std::string* out);
  void flush_dot(std::string* out);

  bool dot_ends_;
  bool ended_ = false;
  bool pending_cr_ = false;   // a CR whose next byte decides: CRLF or a bare CR in the text
  bool pending_dot_ = false;  // a '.' opening the line, held back until we know the line
  uint64_t line_bytes_ = 0;   // bytes of the current line written to out
  uint64_t size_ = 0;
};

}  // namespace tikimail
