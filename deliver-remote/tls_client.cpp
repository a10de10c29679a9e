// deliver-remote/tls_client.cpp: client context, handshake loop and certificate checks.
#include "deliver-remote/tls_client.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <cerrno>
#include <cstring>

namespace tikimail {

Result<ClientCtx> make_client_context(bool verify, const std::string& ca_file) {
  if (Status s = start_openssl(); !s) return s;
  ERR_clear_error();
  ClientCtx ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Status::temporary("SSL_CTX_new: " + openssl_reason("out of memory"));
  SSL_CTX* c = ctx.get();
  if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1)
    return Status::temporary("TLS 1.2 minimum: " + openssl_reason("refused"));
  // A peer's TCP EOF without close_notify reads as its close: SMTP ends with its own replies.
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // The chain is always checked afterwards (SSL_get_verify_result), never by failing the
  // handshake, so that the error says which check failed.
  SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
  if (verify) {
    if (!ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(c, ca_file.c_str(), nullptr) != 1)
        return Status::temporary(ca_file + ": " + openssl_reason("cannot load"));
    } else if (SSL_CTX_set_default_verify_paths(c) != 1) {
      return Status::temporary("default CA paths: " + openssl_reason("cannot load"));
    }
  }
  return ctx;
}

Result<TlsSession> tls_connect(SSL_CTX* ctx, int fd, const TlsPeer& peer, Deadline deadline, ClientSsl* out) {
  ERR_clear_error();
  ClientSsl ssl(SSL_new(ctx));
  if (!ssl) return Status::temporary("SSL_new: " + openssl_reason("out of memory"));
  SSL* s = ssl.get();
  if (SSL_set_fd(s, fd) != 1) return Status::temporary("SSL_set_fd: " + openssl_reason("failed"));
  if (!peer.name.empty() && SSL_set_tlsext_host_name(s, peer.name.c_str()) != 1)
    return Status::temporary("SNI: " + openssl_reason("refused"));
  if (peer.verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(s);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok = peer.name.empty() ? X509_VERIFY_PARAM_set1_ip_asc(param, peer.ip.c_str())
                               : X509_VERIFY_PARAM_set1_host(param, peer.name.c_str(), peer.name.size());
    if (ok != 1) return Status::temporary("certificate name check: " + openssl_reason("cannot set"));
  }
  for (;;) {
    int r = SSL_connect(s);
    if (r == 1) break;
    int err = SSL_get_error(s, r);
    pollfd p{fd, 0, 0};
    if (err == SSL_ERROR_WANT_READ) {
      p.events = POLLIN;
    } else if (err == SSL_ERROR_WANT_WRITE) {
      p.events = POLLOUT;
    } else {
      int saved = errno;
      if (err == SSL_ERROR_ZERO_RETURN) return Status::temporary("handshake: connection closed");
      if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        return Status::temporary(std::string("handshake: ") +
                                 (saved != 0 ? std::strerror(saved) : "connection closed"));
      return Status::temporary("handshake: " + openssl_reason("failed"));
    }
    int n = ::poll(&p, 1, deadline.poll_ms());
    if (n == 0) return Status::temporary("handshake: timeout");
    if (n < 0 && errno != EINTR) return Status::from_errno("handshake: poll", errno);
  }
  TlsSession session;
  session.version = SSL_get_version(s);
  session.cipher = SSL_get_cipher_name(s);
  if (peer.verify) {
    if (SSL_get0_peer_certificate(s) == nullptr) return Status::temporary("certificate verify failed: no certificate");
    long result = SSL_get_verify_result(s);
    if (result != X509_V_OK)
      return Status::temporary(std::string("certificate verify failed: ") + X509_verify_cert_error_string(result));
    session.verified = true;
  }
  *out = std::move(ssl);
  return session;
}

}  // namespace tikimail
