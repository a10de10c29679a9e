// pop3d/command_reader.h: reading one command line without consuming a byte past its LF, so
// that commands a client pipelined behind PASS or APOP stay in the socket for the session
// stage (pop3d/README.md: "pop3d does not read past the end of the line it is answering").
#pragma once

#include <string>

#include "common/lineio.h"

namespace tikimail {

class CommandReader {
 public:
  // `fd` is borrowed. On a socket the reader peeks (recv MSG_PEEK) to find the LF and then
  // takes exactly the bytes up to it; on anything else it reads one byte at a time.
  explicit CommandReader(int fd);

  // One line of at most `max` bytes counting its CRLF (a bare LF counts as two), waiting
  // until `deadline`. kOk: `text` without CR LF, valid until the next call. kTooLong: the
  // line was consumed up to its LF and thrown away. kTimeout, kEof (also mid-line), kError.
  Line read(Deadline deadline, size_t max);

 private:
  IoCode take_socket(bool* got_lf);
  IoCode take_byte(bool* got_lf);

  int fd_;
  bool socket_ = false;
  bool too_long_ = false;
  size_t max_ = 0;
  std::string line_;
};

}  // namespace tikimail
