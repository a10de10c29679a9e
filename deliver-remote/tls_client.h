// deliver-remote/tls_client.h: the OpenSSL client side of STARTTLS (RFC 3207): the context for
// a tlsremote level, and the handshake with its deadline and, for `verify`, the checks of the
// peer's chain and name.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "common/lineio.h"
#include "common/openssl_error.h"
#include "common/status.h"

namespace tikimail {

struct ClientCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct ClientSslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using ClientCtx = std::unique_ptr<SSL_CTX, ClientCtxFree>;
using ClientSsl = std::unique_ptr<SSL, ClientSslFree>;

// A client context: TLS 1.2 minimum, no compression, no renegotiation. With `verify` it trusts
// the PEM file `ca_file` (control/tlsremoteca) or, when that is empty, OpenSSL's default CA
// paths; without, it loads no CA at all. Errors are temporary and carry OpenSSL's reason.
Result<ClientCtx> make_client_context(bool verify, const std::string& ca_file);

struct TlsSession {
  std::string version;  // "TLSv1.3"
  std::string cipher;
  bool verified = false;
};

// What the handshake is to check.
struct TlsPeer {
  std::string name;  // SNI and, with verify, the name the certificate must carry; "" for a literal
  std::string ip;    // with verify and no name: the address the certificate must carry
  bool verify = false;
};

// Runs the client handshake of a new SSL of `ctx` on `fd` (non-blocking) until it completes or
// `deadline` passes, and with peer.verify checks the chain and the name. On success *ssl holds
// the session. The error says why: "timeout", OpenSSL's reason, or the verify error
// ("certificate verify failed: self-signed certificate").
Result<TlsSession> tls_connect(SSL_CTX* ctx, int fd, const TlsPeer& peer, Deadline deadline, ClientSsl* ssl);

}  // namespace tikimail
