// deliver-remote/smtp_client.h: one SMTP client session (RFC 5321) with one mail host, over a
// Connection: greeting, EHLO (HELO), STARTTLS (RFC 3207), MAIL with SIZE (RFC 1870) and BODY
// (RFC 6152), RCPT with or without PIPELINING (RFC 2920), DATA, QUIT. It decides, per address,
// whether the host's answers are final or the next address is to be tried.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "common/remote_result.h"
#include "deliver-remote/connection.h"
#include "deliver-remote/message.h"
#include "deliver-remote/routes.h"

namespace tikimail {

inline constexpr size_t kMaxReplyLine = 2048;  // bytes of one reply line, CRLF included
inline constexpr size_t kMaxReplyLines = 100;  // lines of one reply

// One reply, or why none could be read.
struct Reply {
  enum class Error { kNone, kTimeout, kLost, kTooLong, kMalformed, kTooManyLines };
  Error error = Error::kNone;
  int code = 0;
  std::vector<std::string> lines;  // as received, without the line end: "250-PIPELINING"

  bool ok() const { return error == Error::kNone; }
  int klass() const { return code / 100; }
  // The enhanced status code at the start of the first line's text (RFC 2034) when its class is
  // the reply code's; else "<class>.0.0".
  std::string status() const;
  // The whole reply, lines joined with " / ".
  std::string text() const;
};

// Reads replies from a connection through a buffer, with the limits above.
class ReplyReader {
 public:
  explicit ReplyReader(Connection* conn) : conn_(conn), buf_(4096, '\0') {}
  Reply read(Deadline deadline);
  // Forgets what was received and not read yet (the plaintext after STARTTLS's 220).
  size_t discard_pending();

 private:
  Reply::Error read_line(Deadline deadline, std::string_view* line);
  Connection* conn_;
  std::string buf_;
  size_t start_ = 0, end_ = 0;
};

// What EHLO offered (keywords case-insensitive).
struct Extensions {
  bool pipelining = false;
  bool eightbitmime = false;
  bool starttls = false;
  bool size = false;
  uint64_t size_limit = 0;  // SIZE's argument; 0 when absent, zero or unreadable: no limit
};
Extensions parse_ehlo(const Reply& reply);

// Seconds to wait (RFC 5321 4.5.3.2).
struct Timeouts {
  long greeting = 300;
  long helo = 300;  // EHLO, HELO, STARTTLS and the TLS handshake
  long mail = 300;
  long rcpt = 300;
  long data = 120;        // the reply to DATA
  long data_block = 180;  // each block of the message
  long dot = 600;         // the reply after the final "."
  long quit = 10;
  // control/timeoutremote: replaces every reply deadline; writes and QUIT wait at most as long.
  void replace(long seconds);
};

struct SessionConfig {
  std::string helo;                    // the name after EHLO and HELO
  TlsLevel tls = TlsLevel::kMay;
  SSL_CTX* tls_ctx = nullptr;          // null: no STARTTLS at all
  Timeouts timeouts;
  std::string msgid = "-";             // for log lines
};

// The envelope in SMTP form: "<a@b.test>", "<>".
struct SmtpEnvelope {
  std::string sender;
  std::vector<std::string> rcpts;
};

// The queued message: the first `bytes` bytes of a regular file (read with pread from its
// start for each try, never past `bytes`) and its first pass.
struct MessageSource {
  int fd = -1;
  uint64_t bytes = 0;
  MessageInfo info;
};

struct HostOutcome {
  enum class Next {
    kFinal,             // results hold this host's answer for every recipient
    kNextAddress,       // this address failed before MAIL had a reply: failure says why
    kRetryWithoutTls,   // tlsremote "may" and the handshake failed: reconnect once, plaintext
  };
  Next next = Next::kNextAddress;
  std::vector<RemoteResult> results;
  RemoteResult failure;
};

// Runs one session on `conn` (connected to `target`). allow_tls false: never STARTTLS (the
// retry after a failed handshake).
HostOutcome run_smtp(Connection& conn, const Target& target, const SmtpEnvelope& envelope, const MessageSource& message,
                     const SessionConfig& config, const Log& log, bool allow_tls = true);

}  // namespace tikimail
