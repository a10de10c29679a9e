// pop3d/multiline.h: the wire form of a message in a RETR or TOP answer (RFC 1939 section 3):
// LF line ends become CRLF, lines that begin with '.' are byte-stuffed, the last line is ended,
// and ".CRLF" terminates. The bytes a client keeps after un-stuffing are exactly the count of
// common/maildir.h CrlfSize, which LIST and STAT report.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tikimail {

class MultilineEncoder {
 public:
  // The whole message (RETR), or with `body_lines` the header, the blank line that ends it
  // and that many lines of the body (TOP n k). A message without a blank line is all header.
  explicit MultilineEncoder(std::optional<uint64_t> body_lines = std::nullopt) : body_left_(body_lines) {}

  // Appends the wire form of the next bytes of the file to `out`. Chunks may split anywhere.
  // Once TOP has sent its lines, the rest is ignored and done() is true.
  void feed(std::string_view bytes, std::string& out);
  // Appends the end of the last line when the file did not end one, and the ".CRLF".
  void finish(std::string& out);
  // TOP needs no more bytes; the caller may stop reading the file.
  bool done() const { return done_; }

 private:
  std::optional<uint64_t> body_left_;  // TOP: body lines still to send
  bool in_header_ = true;
  bool line_start_ = true;
  bool prev_cr_ = false;    // the last byte sent was a CR: a following LF is already CRLF
  uint64_t line_bytes_ = 0;  // bytes of the current line sent so far, before its LF
  bool done_ = false;
};

}  // namespace tikimail
