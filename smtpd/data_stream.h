// smtpd/data_stream.h: the DATA body decoder. Finds the one true end of data, undoes dot
// stuffing, turns the message into LF line ends for the queue, and counts its size as
// RFC 1870 does (the CRLF form after dot-unstuffing).
//
// Line ends (SMTP smuggling, smtpd/README.md "Bare CR and LF"):
//   - only <CRLF>.<CRLF> ends the data: the dot line must end in CRLF and the line
//     before it too (the DATA command line counts as ending in CRLF);
//   - a bare LF, and a bare CR not followed by LF, end a line inside the message:
//     the message is normalized to proper line ends, never cut short.
// A line starting with '.' loses that dot wherever it is (RFC 5321 4.5.2).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tikimail {

class DataStream {
 public:
  // Decodes a prefix of `in`, appending LF-form message bytes to *out. Returns the
  // number of bytes of `in` used: fewer than in.size() only when the end of data was
  // found (the rest belongs to the next command, as a pipelining client sends it).
  size_t feed(std::string_view in, std::string* out);
  bool done() const { return state_ == State::kDone; }
  // Message size in CRLF form: each line's bytes plus 2.
  uint64_t size() const { return size_; }

 private:
  enum class State { kLineStart, kDot, kDotCr, kMiddle, kMiddleCr, kDone };
  void end_line(std::string* out, bool crlf);
  State state_ = State::kLineStart;
  bool previous_crlf_ = true;  // the line before ended in CRLF (the DATA line did)
  uint64_t size_ = 0;
};

}  // namespace tikimail
