// tlsd/relay.h: the byte relay between the TLS connection and the protocol program's socket,
// with bounded buffers, an idle limit, and TLS's orderly close in both directions.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace tikimail {

// Each direction buffers at most this much (one TLS record's worth of plaintext).
inline constexpr size_t kRelayBuffer = 16 * 1024;

struct RelayEnd {
  enum class Why {
    kAppClosed,     // the program closed its end; close_notify was sent to the client
    kClientClosed,  // the client closed and then the program did: both ends are done
    kClientGone,    // the client's connection failed (reset, a bad record)
    kAppGone,       // writing to the program failed (it exited without reading)
    kIdle,          // no byte moved either way for the idle limit
  };
  Why why = Why::kAppClosed;
  std::string reason;         // for the log: "timeout", OpenSSL's or the kernel's error text
  uint64_t to_app = 0;        // plaintext bytes from the client to the program
  uint64_t to_client = 0;     // plaintext bytes from the program to the client
};

// Relays until both directions are finished or one fails. `ssl` has completed its handshake
// on the network fds (non-blocking); `app` is our end of the program's socketpair (made
// non-blocking here). The network fds and `app` stay open and owned by the caller.
// - Client data is decrypted into a kRelayBuffer buffer and written to `app`. After the
//   client's close_notify (or its TCP EOF: the context sets SSL_OP_IGNORE_UNEXPECTED_EOF)
//   `app` gets shutdown(SHUT_WR), so the program reads EOF while it may still answer.
// - Program data goes out through SSL_write; when the program closes its end (read EOF), the
//   rest is flushed and SSL_shutdown sends close_notify, then the relay ends.
// - `idle` is the longest time without a byte moved either way.
RelayEnd relay(SSL* ssl, int net_in, int net_out, int app, std::chrono::seconds idle);

}  // namespace tikimail
