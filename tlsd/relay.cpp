// tlsd/relay.cpp: one poll loop moving bytes both ways. Every pass tries each step that its
// buffer allows and remembers what a blocked step waits for; only a pass that moved nothing
// polls, so bytes OpenSSL holds decrypted (SSL_pending) are taken before any wait.
#include "tlsd/relay.h"

#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "common/lineio.h"
#include "tlsd/context.h"

namespace tikimail {

namespace {

// How long close_notify may wait for a client that does not read.
constexpr int kCloseNotifySeconds = 10;

struct Buffer {
  char bytes[kRelayBuffer];
  size_t start = 0;
  size_t end = 0;
  bool empty() const { return start == end; }
  // Room at the end; an emptied buffer starts over at 0.
  size_t room() {
    if (start == end) start = end = 0;
    return kRelayBuffer - end;
  }
};

// Sends close_notify (a unidirectional shutdown: we do not wait for the client's), so that
// clients see an orderly end rather than "unexpected eof" (COMPONENTS.md section 4).
void send_close_notify(SSL* ssl, int net_out) {
  Deadline deadline = Deadline::after_seconds(kCloseNotifySeconds);
  for (;;) {
    int r = SSL_shutdown(ssl);
    if (r >= 0) return;  // 0: sent, the client's not yet seen; 1: both done
    if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_WRITE) break;
    pollfd p{net_out, POLLOUT, 0};
    if (::poll(&p, 1, deadline.poll_ms()) == 0) break;
  }
  ERR_clear_error();
}

// What a failed SSL_read or SSL_write means: wait for the fd, or the end of that direction.
struct SslStep {
  bool want_read = false;
  bool want_write = false;
  bool closed = false;  // close_notify received
  bool failed = false;
  std::string reason;
};

SslStep classify(SSL* ssl, int r) {
  SslStep step;
  int err = SSL_get_error(ssl, r);
  if (err == SSL_ERROR_WANT_READ) {
    step.want_read = true;
  } else if (err == SSL_ERROR_WANT_WRITE) {
    step.want_write = true;
  } else if (err == SSL_ERROR_ZERO_RETURN) {
    step.closed = true;
  } else {
    int saved = errno;
    step.failed = true;
    if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
      step.reason = saved != 0 ? std::strerror(saved) : "client closed without close_notify";
    else
      step.reason = openssl_reason("TLS error");
  }
  return step;
}

}  // namespace

// How long the client has to take the last bytes once the program has exited.
constexpr std::chrono::seconds kDrainAfterProgram{10};

RelayEnd relay(SSL* ssl, int net_in, int net_out, int app, std::chrono::seconds idle) {
  RelayEnd end;
  if (Status s = set_nonblocking(app); !s) {
    end.why = RelayEnd::Why::kAppGone;
    end.reason = s.message();
    return end;
  }
  auto to_app = std::make_unique<Buffer>();     // client -> program
  auto to_client = std::make_unique<Buffer>();  // program -> client
  bool client_eof = false, app_eof = false, app_shut = false;
  Deadline deadline = Deadline::after(idle);
  ERR_clear_error();
  for (;;) {
    bool moved = false;
    bool net_read = false, net_write = false, app_read = false, app_write = false;

    if (!client_eof && to_app->room() > 0) {
      int n = SSL_read(ssl, to_app->bytes + to_app->end, static_cast<int>(to_app->room()));
      if (n > 0) {
        to_app->end += static_cast<size_t>(n);
        end.to_app += static_cast<uint64_t>(n);
        moved = true;
      } else {
        SslStep step = classify(ssl, n);
        if (step.failed) {
          end.why = RelayEnd::Why::kClientGone;  // no SSL_shutdown after a fatal error
          end.reason = step.reason;
          return end;
        }
        client_eof = step.closed;
        moved |= step.closed;
        net_read |= step.want_read;
        net_write |= step.want_write;
      }
    }
    if (!to_app->empty()) {
      ssize_t n = ::write(app, to_app->bytes + to_app->start, to_app->end - to_app->start);
      if (n > 0) {
        to_app->start += static_cast<size_t>(n);
        moved = true;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        app_write = true;
      } else if (errno != EINTR) {
        end.why = RelayEnd::Why::kAppGone;
        end.reason = std::strerror(errno);
        send_close_notify(ssl, net_out);
        return end;
      }
    }
    if (client_eof && to_app->empty() && !app_shut) {
      ::shutdown(app, SHUT_WR);  // the program reads EOF and may still answer
      app_shut = true;
      moved = true;
    }

    if (!app_eof && to_client->room() > 0) {
      ssize_t n = ::read(app, to_client->bytes + to_client->end, to_client->room());
      if (n > 0) {
        to_client->end += static_cast<size_t>(n);
        moved = true;
      } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        app_eof = true;  // a reset from the program is its end too
        moved = true;
      } else if (errno != EINTR) {
        app_read = true;
      }
    }
    if (!to_client->empty()) {
      int n = SSL_write(ssl, to_client->bytes + to_client->start, static_cast<int>(to_client->end - to_client->start));
      if (n > 0) {
        to_client->start += static_cast<size_t>(n);
        end.to_client += static_cast<uint64_t>(n);
        moved = true;
      } else {
        SslStep step = classify(ssl, n);
        if (step.failed || step.closed) {
          end.why = RelayEnd::Why::kClientGone;
          end.reason = step.failed ? step.reason : "client closed";
          return end;
        }
        net_read |= step.want_read;
        net_write |= step.want_write;
      }
    }
    if (app_eof && to_client->empty()) {
      send_close_notify(ssl, net_out);
      end.why = client_eof ? RelayEnd::Why::kClientClosed : RelayEnd::Why::kAppClosed;
      return end;
    }

    if (moved) {
      // Once the program has ended, what is left for the client gets a short grace, not the
      // whole idle limit: a client that stopped reading must not hold the connection (and a
      // tcpserver slot) after the program gave up on it.
      deadline = Deadline::after(app_eof ? std::min(idle, kDrainAfterProgram) : idle);
      continue;
    }
    pollfd fds[3];
    nfds_t count = 0;
    short in_events = net_read ? POLLIN : 0;
    short out_events = net_write ? POLLOUT : 0;
    if (net_in == net_out) {
      if (in_events | out_events) fds[count++] = {net_in, static_cast<short>(in_events | out_events), 0};
    } else {
      if (in_events) fds[count++] = {net_in, in_events, 0};
      if (out_events) fds[count++] = {net_out, out_events, 0};
    }
    short app_events = static_cast<short>((app_read ? POLLIN : 0) | (app_write ? POLLOUT : 0));
    if (app_events) fds[count++] = {app, app_events, 0};
    int n = ::poll(fds, count, deadline.poll_ms());
    if (n == 0) {
      end.why = RelayEnd::Why::kIdle;
      end.reason = "timeout";
      send_close_notify(ssl, net_out);
      return end;
    }
    if (n < 0 && errno != EINTR) {
      end.why = RelayEnd::Why::kClientGone;
      end.reason = std::strerror(errno);
      return end;
    }
  }
}

}  // namespace tikimail
