// deliver-remote/test_server.h: unit tests only: a scripted SMTP server in a thread, speaking on
// one end of a socketpair (or an accepted loopback socket), optionally switching to TLS after
// STARTTLS, and recording what the client sent.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "common/queue_file.h"
#include "common/test_util.h"
#include "deliver-remote/message.h"
#include "deliver-remote/mx.h"
#include "deliver-remote/smtp_client.h"

namespace tikimail::testing {

// The replies of a well-behaved ESMTP server with PIPELINING, SIZE and 8BITMIME.
inline std::string standard_reply(std::string_view cmd) {
  auto starts = [&](std::string_view p) { return cmd.substr(0, p.size()) == p; };
  if (starts("EHLO")) return "250-fake.test hello\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n";
  if (starts("HELO")) return "250 fake.test\r\n";
  if (starts("MAIL")) return "250 2.1.0 Ok\r\n";
  if (starts("RCPT")) return "250 2.1.5 Ok\r\n";
  if (starts("DATA")) return "354 End data with <CR><LF>.<CR><LF>\r\n";
  if (cmd == ".") return "250 2.0.0 Ok: queued as 42\r\n";
  if (starts("QUIT")) return "221 2.0.0 Bye\r\n";
  if (starts("RSET")) return "250 2.0.0 Ok\r\n";
  return "502 5.5.1 what?\r\n";
}

// The server. `respond` maps each command line (without CRLF; "." for the end of the message)
// to the raw reply bytes; "" closes the connection instead of answering. With `tls_ctx`, a reply
// to STARTTLS that starts with "220" is followed by the server handshake.
struct FakeSmtp {
  std::string greeting = "220 fake.test ESMTP\r\n";
  std::function<std::string(std::string_view)> respond = standard_reply;
  SSL_CTX* tls_ctx = nullptr;
  bool close_after_starttls = false;  // answer STARTTLS, then hang up: a failed handshake

  // What happened, for the test to look at after join().
  std::vector<std::string> commands;  // every line received, in order
  std::vector<std::string> chunks;    // the command bytes of each read(2): pipelining shows here
  std::string data;                   // the DATA bytes up to and with the final ".\r\n"
  bool tls_done = false;

  // Serves until QUIT, EOF or a "" reply, then hangs up (the fd stays open for its owner).
  void serve(int fd) {
    ::signal(SIGPIPE, SIG_IGN);
    fd_ = fd;
    run();
    ::shutdown(fd, SHUT_RDWR);
  }
  ~FakeSmtp() {
    if (ssl_ != nullptr) SSL_free(ssl_);
  }

 private:
  void run() {
    if (greeting.empty() || !send(greeting)) return;
    for (;;) {
      std::string line;
      if (!read_line(&line)) return;
      commands.push_back(line);
      std::string reply = respond(line);
      if (reply.empty() || !send(reply)) return;
      if (line == "STARTTLS" && close_after_starttls) return;
      if (line == "STARTTLS" && tls_ctx != nullptr && reply.substr(0, 3) == "220") {
        ssl_ = SSL_new(tls_ctx);
        SSL_set_fd(ssl_, fd_);
        buf_.clear();
        if (SSL_accept(ssl_) != 1) return;
        tls_done = true;
      }
      if (reply.substr(0, 3) == "354") {
        for (;;) {
          std::string d;
          if (!read_line(&d, true)) return;
          data += d;
          if (d == ".\r\n") break;
        }
        commands.push_back(".");
        std::string end = respond(".");
        if (end.empty() || !send(end)) return;
      }
      if (line == "QUIT") return;
    }
  }
  bool fill() {
    pollfd p{fd_, POLLIN, 0};
    if (ssl_ == nullptr || SSL_pending(ssl_) == 0)
      if (::poll(&p, 1, 10000) <= 0) return false;
    char tmp[65536];
    int n = ssl_ != nullptr ? SSL_read(ssl_, tmp, sizeof tmp) : static_cast<int>(::read(fd_, tmp, sizeof tmp));
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    if (!in_data_) chunks.emplace_back(tmp, static_cast<size_t>(n));
    return true;
  }
  // A line without its CRLF (raw: with it).
  bool read_line(std::string* line, bool raw = false) {
    in_data_ = raw;
    for (;;) {
      size_t lf = buf_.find('\n');
      if (lf != std::string::npos) {
        *line = buf_.substr(0, lf + 1);
        buf_.erase(0, lf + 1);
        if (!raw) {
          line->pop_back();
          if (!line->empty() && line->back() == '\r') line->pop_back();
        }
        return true;
      }
      if (!fill()) return false;
    }
  }
  bool send(const std::string& bytes) {
    if (ssl_ != nullptr) return SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) > 0;
    return write_all(fd_, bytes).is_ok();
  }
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string buf_;
  bool in_data_ = false;
};

// A socketpair: `server` for the FakeSmtp thread, `client` for the Connection.
struct SmtpPair {
  Fd server;
  Fd client;
  SmtpPair() {
    ::signal(SIGPIPE, SIG_IGN);
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0) {
      server = Fd(fds[0]);
      client = Fd(fds[1]);
    }
  }
};

// A Target that names a host without being connected to (the socketpair is the connection).
inline Target fake_target(const std::string& name = "mx.fake.test") {
  Target t;
  t.name = name;
  t.ip = "127.0.0.1";
  t.port = 25;
  return t;
}

// What follows every TestMessage in its file, as an envelope follows the message in a queue
// entry: a peer that receives any of it got more than the message.
inline const std::string kEntryEnvelope = std::string("Fleak@envelope.test\0Tleak@envelope.test\0\0", 41);

// A queue entry file in `dir` (the message, an envelope, the trailer) opened for reading,
// with the first pass over its message done.
struct TestMessage {
  Fd fd;
  uint64_t bytes = 0;
  MessageInfo info;
  TestMessage(const TempDir& dir, const std::string& content) : bytes(content.size()) {
    dir.write("message", queue_file_contents(content, kEntryEnvelope));
    fd = Fd(::open((dir.path() / "message").c_str(), O_RDONLY | O_CLOEXEC));
    auto scanned = scan_message(fd.get(), bytes);
    if (scanned) info = *scanned;
  }
  MessageSource source() const { return MessageSource{fd.get(), bytes, info}; }
};

// A loopback TCP listener on 127.0.0.1 and a port of the kernel's choice; serve_one() accepts
// one connection in a thread and runs the FakeSmtp on it.
class TcpListener {
 public:
  TcpListener() {
    ::signal(SIGPIPE, SIG_IGN);
    fd_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_.get(), 8);
    socklen_t len = sizeof a;
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  uint16_t port() const { return port_; }
  // Accepts `count` connections one after the other, each served by the next server.
  std::thread serve(std::vector<FakeSmtp*> servers) {
    return std::thread([this, servers] {
      for (FakeSmtp* s : servers) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, 10000) <= 0) return;
        Fd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn.valid()) return;
        s->serve(conn.get());
      }
    });
  }

 private:
  Fd fd_;
  uint16_t port_ = 0;
};

}  // namespace tikimail::testing
