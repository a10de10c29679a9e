// tlsd/context.h: the server's TLS setup for one connection: the SSL_CTX built from the files
// under control/ (re-read by every tlsd process, so a replaced certificate is served to the next
// connection), the SNI choice among control/tls/sni/<name>/, and the handshake with its deadline.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/lineio.h"
#include "common/openssl_error.h"
#include "common/status.h"

namespace tikimail {

// Paths relative to the prefix, and the defaults of tlsd/README.md.
inline constexpr const char* kTlsDir = "control/tls";
inline constexpr const char* kDefaultTlsCiphers = "ECDHE+AESGCM:ECDHE+CHACHA20";  // TLS 1.2

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslCtx = std::unique_ptr<SSL_CTX, SslCtxFree>;
using Ssl = std::unique_ptr<SSL, SslFree>;
struct EvpPkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using EvpPkey = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

struct TlsConfig {
  std::string tls_dir = kTlsDir;               // holds cert.pem, key.pem and sni/
  std::string ciphers = kDefaultTlsCiphers;    // control/tlsciphers (OpenSSL cipher list)
  std::string ciphersuites;                    // control/tlsciphersuites; empty: OpenSSL's
  // Reads control/tlsciphers and control/tlsciphersuites (a missing file is the default).
  static Result<TlsConfig> load();
};

// The SNI name as the key of control/tls/sni/<name>: lowercased, and only when it is a host
// name (dot-separated labels of letters, digits, '-' and '_', each 1 to 63 bytes, at most 253
// in all), so that it is one safe path component: no '/', no "..", no empty name. Else nullopt.
std::optional<std::string> sni_directory_name(std::string_view server_name);

// Checks, without OpenSSL and without reading them, that <tls_dir>/cert.pem and key.pem are
// regular files this process can open: all that on-request mode verifies before the program
// runs. Whether they parse and match is learnt when the context is built, at the request.
// The error is temporary and names the file ("control/tls/key.pem: No such file or directory").
Status check_key_files(const std::string& tls_dir);

// The PEM private key in `path`, decoded as the key type of `cert`'s public key ("RSA",
// "EC", "ED25519"), or null. Naming the type spares OpenSSL's decoder setup its walk over
// every type it knows: in a fresh process here, 0.5 ms became 0.2 (a small C program timing
// each step of the context, 40 processes; tlsd/README.md, Notes, has the whole). A key
// of another type, or in a form this does not take (an EC key after an EC PARAMETERS
// block), gets null, with OpenSSL's error queue cleared; make_server_context and the SNI
// callback then load it the general way, whose error is the one to log. Whether the key
// belongs to the certificate is checked by the caller (SSL_CTX_use_PrivateKey and
// SSL_CTX_check_private_key), not here.
EvpPkey read_key_of_cert_type(const std::string& path, X509* cert);

// A server context: TLS 1.2 minimum (1.3 allowed), the configured ciphers, server cipher
// preference, no compression, no renegotiation, no session cache or tickets (every
// connection is a new process: a ticket could never be redeemed). It holds
// <tls_dir>/cert.pem (chain, leaf first) and <tls_dir>/key.pem, and its SNI callback switches
// a connection to <tls_dir>/sni/<name>/{cert,key}.pem when that folder exists (otherwise the
// default pair is served; a folder whose files do not load fails the handshake). The config
// must outlive the context. Errors are temporary and carry OpenSSL's reason.
Result<SslCtx> make_server_context(const TlsConfig& config);

// The protocol version and cipher of an established connection: "TLSv1.3", "TLS_AES_...".
struct TlsParams {
  std::string version;
  std::string cipher;
  std::string sni;  // the client's server name, log_safe'd; "" when none was sent
};

// Runs the server handshake of `ssl` on the network fds (made non-blocking here) until it
// completes or `deadline` passes. On failure the error says why, with OpenSSL's reason
// ("timeout", "client closed", "error:0A000102:SSL routines::unsupported protocol").
Result<TlsParams> accept_tls(SSL* ssl, int net_in, int net_out, Deadline deadline);


}  // namespace tikimail
