// deliver-remote/message.h: the queued message (the first `-l` bytes of fd 0, LF line ends) in
// the form SMTP DATA wants: CRLF line ends, dot-stuffed, ending in ".\r\n". The message is
// streamed in blocks, never held whole in memory, and never read past its length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tikimail {

// RFC 5321 4.5.3.1.6: a text line is at most 1000 octets with its CRLF, as sent (a stuffed dot
// counts).
inline constexpr size_t kMaxDataLine = 998;

// Turns message bytes into DATA bytes, block by block. Every line end becomes CRLF: an LF, a
// CRLF, and a lone CR alike (a peer never gets a bare CR or a bare LF); a '.' at the start of a
// line is doubled (RFC 5321 4.5.2); a line longer than kMaxDataLine octets is broken by
// inserting CRLF and a space (a header line stays one folded field, a body line loses
// nothing); finish() adds a missing final line end and the ".\r\n".
class DataEncoder {
 public:
  // Appends the DATA form of `in` to `out`.
  void feed(std::string_view in, std::string* out);
  // Appends what completes the message: a pending line end, a missing last CRLF, ".\r\n".
  void finish(std::string* out);
  // The message's size in CRLF form so far (RFC 1870: without the stuffed dots and the final
  // ".\r\n", with the line breaks inserted); after finish() the size SIZE= announces.
  uint64_t size() const { return size_; }
  bool eight_bit() const { return eight_bit_; }

 private:
  void line_end(std::string* out);
  bool line_start_ = true;  // the next byte starts a line
  bool pending_cr_ = false; // a CR was seen; an LF right after it belongs to it
  size_t line_len_ = 0;     // octets of the current line sent so far, a stuffed dot included
  bool eight_bit_ = false;
  uint64_t size_ = 0;
};

// What the first pass over the message learns.
struct MessageInfo {
  uint64_t crlf_size = 0;  // as DataEncoder::size() after finish()
  bool eight_bit = false;  // some byte is above 127
};

// Blocks of this size are read from the message and written to the peer.
inline constexpr size_t kMessageBlock = 65536;

// Reads the first `bytes` bytes of `fd` (a regular file: the queue entry, whose envelope and
// trailer follow the message) once, with pread from offset 0, to measure them; nothing past
// them is read, and the fd's offset is not used. A file that ends sooner is a temporary error.
Result<MessageInfo> scan_message(int fd, uint64_t bytes);

// Reads the next block of the message: at most kMessageBlock bytes at `offset`, never past
// `bytes`. Returns the count (0 only at `bytes`); a read error, or the file ending before
// `bytes`, is a temporary error. Both passes over the message read through this.
Result<size_t> read_message_block(int fd, uint64_t bytes, uint64_t offset, std::string* block);

}  // namespace tikimail
