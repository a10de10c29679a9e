// tlsd/context.cpp: the SSL_CTX from control/, the SNI callback, and the handshake loop.
#include "tlsd/context.h"

#include "common/openssl_error.h"

#include <fcntl.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "common/control.h"
#include "common/fd.h"
#include "common/log.h"

namespace tikimail {

Result<TlsConfig> TlsConfig::load() {
  TlsConfig config;
  auto ciphers = read_control_string("control/tlsciphers", kDefaultTlsCiphers);
  if (!ciphers) return ciphers.error();
  auto suites = read_control_string("control/tlsciphersuites", "");
  if (!suites) return suites.error();
  config.ciphers = *ciphers;
  config.ciphersuites = *suites;
  return config;
}

std::optional<std::string> sni_directory_name(std::string_view server_name) {
  if (server_name.empty() || server_name.size() > 253) return std::nullopt;
  std::string name;
  size_t label = 0;
  for (char c : server_name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c == '.') {
      if (label == 0) return std::nullopt;  // "", ".x", "a..b": also rules out ".."
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
      if (++label > 63) return std::nullopt;
    } else {
      return std::nullopt;  // '/', NUL, spaces, 8-bit bytes
    }
    name.push_back(c);
  }
  if (label == 0) return std::nullopt;  // a trailing dot
  return name;
}

Status check_key_files(const std::string& tls_dir) {
  for (const char* name : {"/cert.pem", "/key.pem"}) {
    std::string path = tls_dir + name;
    // O_NONBLOCK: a FIFO put there by mistake must not hang the connection here.
    Fd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!file.valid()) return Status::from_errno(path, errno);
    struct stat st;
    if (::fstat(file.get(), &st) != 0) return Status::from_errno(path, errno);
    if (!S_ISREG(st.st_mode)) return Status::temporary(path + ": not a regular file");
  }
  return Status::ok();
}

EvpPkey read_key_of_cert_type(const std::string& path, X509* cert) {
  EVP_PKEY* public_key = cert != nullptr ? X509_get0_pubkey(cert) : nullptr;
  const char* type = public_key != nullptr ? EVP_PKEY_get0_type_name(public_key) : nullptr;
  if (type == nullptr) return nullptr;
  std::unique_ptr<BIO, decltype(&BIO_free)> file(BIO_new_file(path.c_str(), "r"), BIO_free);
  if (!file) {
    ERR_clear_error();
    return nullptr;
  }
  EVP_PKEY* key = nullptr;
  std::unique_ptr<OSSL_DECODER_CTX, decltype(&OSSL_DECODER_CTX_free)> decoder(
      OSSL_DECODER_CTX_new_for_pkey(&key, "PEM", nullptr, type, OSSL_KEYMGMT_SELECT_KEYPAIR, nullptr, nullptr),
      OSSL_DECODER_CTX_free);
  if (!decoder || OSSL_DECODER_from_bio(decoder.get(), file.get()) != 1) {
    EVP_PKEY_free(key);
    ERR_clear_error();
    return nullptr;
  }
  return EvpPkey(key);
}

namespace {

// Puts the private key of <key> into the context or connection that already holds its
// certificate.
bool use_key_file(SSL_CTX* ctx, const std::string& key) {
  if (EvpPkey pkey = read_key_of_cert_type(key, SSL_CTX_get0_certificate(ctx)))
    return SSL_CTX_use_PrivateKey(ctx, pkey.get()) == 1;
  return SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) == 1;
}
bool use_key_file(SSL* ssl, const std::string& key) {
  if (EvpPkey pkey = read_key_of_cert_type(key, SSL_get_certificate(ssl)))
    return SSL_use_PrivateKey(ssl, pkey.get()) == 1;
  return SSL_use_PrivateKey_file(ssl, key.c_str(), SSL_FILETYPE_PEM) == 1;
}

}  // namespace

// Runs inside the handshake, when the ClientHello names a host. The pair of that host's
// folder replaces the default one on this connection only. SSL_get_app_data is the
// std::string where accept_tls wants the name for its log line.
static int on_server_name(SSL* ssl, int* alert, void* arg) {
  const auto* config = static_cast<const TlsConfig*>(arg);
  const char* sent = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (sent == nullptr) return SSL_TLSEXT_ERR_NOACK;
  if (auto* log_name = static_cast<std::string*>(SSL_get_app_data(ssl))) *log_name = log_safe(sent, 253);
  auto name = sni_directory_name(sent);
  if (!name) return SSL_TLSEXT_ERR_NOACK;  // not a host name: never a path
  std::string dir = config->tls_dir + "/sni/" + *name;
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return SSL_TLSEXT_ERR_OK;  // the default pair
  std::string cert = dir + "/cert.pem";
  std::string key = dir + "/key.pem";
  if (SSL_use_certificate_chain_file(ssl, cert.c_str()) != 1 || !use_key_file(ssl, key) ||
      SSL_check_private_key(ssl) != 1) {
    // Serving the default certificate instead would hide the mistake from the administrator.
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

Result<SslCtx> make_server_context(const TlsConfig& config) {
  if (Status s = start_openssl(); !s) return s;
  ERR_clear_error();
  SslCtx ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return Status::temporary("SSL_CTX_new: " + openssl_reason("out of memory"));
  SSL_CTX* c = ctx.get();
  // No passphrase for an encrypted key: tlsd has none to give, and OpenSSL's own prompt would
  // read one from the terminal, or from fd 0, the client's socket. Connections inherit it.
  SSL_CTX_set_default_passwd_cb(c, [](char*, int, int, void*) { return 0; });
  if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1)
    return Status::temporary("TLS 1.2 minimum: " + openssl_reason("refused"));
  // Renegotiation and compression: CVE-2009-3555, CRIME. No tickets or cache: see the header.
  // A TCP EOF without close_notify reads as the client's close: SMTP and POP3 carry their own
  // end markers (DATA's dot, QUIT), and many clients (Python's smtplib) close that way.
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                             SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(c, 0);
  // Partial writes for the non-blocking relay; released buffers keep an idle connection small.
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(c, config.ciphers.c_str()) != 1)
    return Status::temporary("control/tlsciphers: " + openssl_reason("no usable cipher"));
  if (!config.ciphersuites.empty() && SSL_CTX_set_ciphersuites(c, config.ciphersuites.c_str()) != 1)
    return Status::temporary("control/tlsciphersuites: " + openssl_reason("no usable cipher suite"));
  std::string cert = config.tls_dir + "/cert.pem";
  std::string key = config.tls_dir + "/key.pem";
  if (SSL_CTX_use_certificate_chain_file(c, cert.c_str()) != 1)
    return Status::temporary(cert + ": " + openssl_reason("cannot load"));
  if (!use_key_file(c, key))
    return Status::temporary(key + ": " + openssl_reason("cannot load"));
  if (SSL_CTX_check_private_key(c) != 1)
    return Status::temporary(key + ": " + openssl_reason("does not match the certificate"));
  SSL_CTX_set_tlsext_servername_callback(c, on_server_name);
  SSL_CTX_set_tlsext_servername_arg(c, const_cast<TlsConfig*>(&config));
  return ctx;
}

Result<TlsParams> accept_tls(SSL* ssl, int net_in, int net_out, Deadline deadline) {
  if (Status s = set_nonblocking(net_in); !s) return s;
  if (Status s = set_nonblocking(net_out); !s) return s;
  if (SSL_set_rfd(ssl, net_in) != 1 || SSL_set_wfd(ssl, net_out) != 1)
    return Status::temporary("SSL_set_fd: " + openssl_reason("failed"));
  TlsParams params;
  SSL_set_app_data(ssl, &params.sni);
  ERR_clear_error();
  for (;;) {
    int r = SSL_accept(ssl);
    if (r == 1) break;
    int err = SSL_get_error(ssl, r);
    pollfd p{};
    if (err == SSL_ERROR_WANT_READ) {
      p = {net_in, POLLIN, 0};
    } else if (err == SSL_ERROR_WANT_WRITE) {
      p = {net_out, POLLOUT, 0};
    } else {
      int saved = errno;
      SSL_set_app_data(ssl, nullptr);
      if (err == SSL_ERROR_ZERO_RETURN) return Status::permanent("client closed");
      if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        return Status::permanent(saved != 0 ? std::string(std::strerror(saved)) : "client closed");
      return Status::permanent(openssl_reason("handshake failed"));
    }
    int n = ::poll(&p, 1, deadline.poll_ms());
    if (n == 0 || (n < 0 && errno != EINTR)) {
      SSL_set_app_data(ssl, nullptr);
      return n == 0 ? Status::temporary("timeout") : Status::from_errno("poll", errno);
    }
  }
  SSL_set_app_data(ssl, nullptr);
  params.version = SSL_get_version(ssl);
  params.cipher = SSL_get_cipher_name(ssl);
  return params;
}

}  // namespace tikimail
