// deliver-remote/connection.h: one connection to a mail host, plain or (after STARTTLS) TLS, with
// a deadline on every read and write. The SMTP client speaks through it only, so tests drive it
// over a socketpair.
#pragma once

#include <string_view>

#include "common/fd.h"
#include "common/lineio.h"
#include "deliver-remote/mx.h"
#include "deliver-remote/tls_client.h"

namespace tikimail {

// Connects to `target` without blocking past `deadline`. The error names the address and
// errno ("connect 192.0.2.1:25: Connection refused", "... timeout").
Result<Fd> connect_to(const Target& target, Deadline deadline);

class Connection {
 public:
  // Takes the connected socket and makes it non-blocking.
  explicit Connection(Fd fd);

  // Reads what is there (at most `cap` bytes) into buf; kOk with *n > 0, else kTimeout, kEof
  // or kError.
  IoCode read_some(char* buf, size_t cap, Deadline deadline, size_t* n);
  // Writes all of `bytes` before the deadline.
  IoCode write_all(std::string_view bytes, Deadline deadline);
  // Turns the connection into TLS (tls_client.h); from then on reads and writes go through it.
  Result<TlsSession> start_tls(SSL_CTX* ctx, const TlsPeer& peer, Deadline deadline);
  bool tls() const { return ssl_ != nullptr; }
  int fd() const { return fd_.get(); }

 private:
  IoCode wait(short events, Deadline deadline);
  Fd fd_;
  ClientSsl ssl_;
};

}  // namespace tikimail
