// tlsd/serve.cpp: the two modes. The key is loaded and the handshake done with tlsd's
// starting privileges (root in a root install, so that only root can read the keys, including
// the SNI ones read during the handshake); -U/-G take effect before the first relayed byte.
#include "tlsd/serve.h"

#include <cstdlib>

#include "common/control.h"
#include "common/starttls.h"
#include "tlsd/handoff.h"
#include "tlsd/relay.h"

namespace tikimail {

Result<ServeConfig> ServeConfig::load() {
  ServeConfig config;
  auto tls = TlsConfig::load();
  if (!tls) return tls.error();
  auto handshake = read_control_uint("control/timeouttlshandshake", 60);
  if (!handshake) return handshake.error();
  auto idle = read_control_uint("control/timeouttls", 1200);
  if (!idle) return idle.error();
  config.tls = std::move(*tls);
  config.handshake_seconds = static_cast<long>(*handshake);
  config.idle_seconds = static_cast<long>(*idle);
  if (const char* ip = std::getenv("TCPREMOTEIP"); ip != nullptr && *ip != '\0') config.ip = log_safe(ip, 64);
  return config;
}

namespace {

const char* why_text(RelayEnd::Why why) {
  switch (why) {
    case RelayEnd::Why::kAppClosed: return "program closed";
    case RelayEnd::Why::kClientClosed: return "client closed";
    case RelayEnd::Why::kClientGone: return "client gone";
    case RelayEnd::Why::kAppGone: return "program gone";
    case RelayEnd::Why::kIdle: return "idle";
  }
  return "?";
}

// Drops -U/-G, relays, closes the program's socket (it reads EOF) and reaps the program.
int relay_and_reap(SSL* ssl, Fd app, pid_t pid, const Options& options, const ServeConfig& config,
                   const Log& log) {
  if (options.self) {
    if (Status s = drop_privileges(*options.self); !s) {
      log.fatal("cannot drop privileges: {}", s.message());
      (void)app.close();
      wait_program(pid);
      return 111;
    }
  }
  RelayEnd end = relay(ssl, 0, 1, app.get(), std::chrono::seconds(config.idle_seconds));
  // A normal close is no event: tcpserver logs the end of every connection.
  if (end.why == RelayEnd::Why::kIdle || end.why == RelayEnd::Why::kClientGone || end.why == RelayEnd::Why::kAppGone)
    log.info("closed ip={} why={} reason={} to_app={} to_client={}", config.ip, why_text(end.why),
             log_safe(end.reason), end.to_app, end.to_client);
  (void)app.close();
  return wait_program(pid);
}

int serve_implicit(const Options& options, const ServeConfig& config, SSL_CTX* ctx, const Log& log) {
  Ssl ssl(SSL_new(ctx));
  if (!ssl) {
    log.fatal("SSL_new: {}", openssl_reason("out of memory"));
    return 111;
  }
  auto params = accept_tls(ssl.get(), 0, 1, Deadline::after_seconds(config.handshake_seconds));
  if (!params) {
    log.info("handshake failed ip={} reason={}", config.ip, log_safe(params.error().message()));
    return 1;
  }
  log.info("handshake ok version={} cipher={} sni={} ip={}", params->version, params->cipher,
           params->sni.empty() ? "-" : params->sni, config.ip);
  auto pair = make_socket_pair();
  if (!pair) {
    log.fatal("{}", pair.error().message());
    return 111;
  }
  ChildSetup setup;
  setup.stdio = pair->theirs.get();
  setup.setenv = {{"TLS", params->version}, {"TLSCIPHER", params->cipher}};
  setup.unsetenv = {"TLSCTL"};
  auto pid = start_program(options.argv, options.program, setup);
  (void)pair->theirs.close();
  if (!pid) {
    log.fatal("{}", pid.error().message());
    return 111;
  }
  return relay_and_reap(ssl.get(), std::move(pair->ours), *pid, options, config, log);
}

int serve_on_request(const Options& options, const ServeConfig& config, SSL_CTX* ctx, const Log& log) {
  auto control = make_socket_pair();
  if (!control) {
    log.fatal("{}", control.error().message());
    return 111;
  }
  ChildSetup setup;
  setup.control = control->theirs.get();
  setup.setenv = {{"TLSCTL", std::to_string(control->theirs.get())}};
  setup.unsetenv = {"TLS", "TLSCIPHER"};
  auto pid = start_program(options.argv, options.program, setup);
  (void)control->theirs.close();
  if (!pid) {
    log.fatal("{}", pid.error().message());
    return 111;
  }
  auto pidfd = open_pidfd(*pid);
  if (!pidfd) {
    log.fatal("{}", pidfd.error().message());
    (void)control->ours.close();  // the program's request fails; it says so to the client
    return wait_program(*pid);
  }
  auto request = wait_for_request(control->ours.get(), pidfd->get());
  if (!request || *request != Request::kStartTls) {
    if (!request) log.warn("{}", request.error().message());
    (void)control->ours.close();
    return wait_program(*pid);
  }
  Ssl ssl(SSL_new(ctx));
  auto params = ssl ? accept_tls(ssl.get(), 0, 1, Deadline::after_seconds(config.handshake_seconds))
                    : Result<TlsParams>(Status::temporary("SSL_new: " + openssl_reason("out of memory")));
  if (!params) {
    log.info("handshake failed ip={} reason={}", config.ip, log_safe(params.error().message()));
    (void)send_refused(control->ours.get(), log_safe(params.error().message()));
    (void)control->ours.close();
    return wait_program(*pid);
  }
  log.info("handshake ok version={} cipher={} sni={} ip={}", params->version, params->cipher,
           params->sni.empty() ? "-" : params->sni, config.ip);
  auto app = make_socket_pair();
  Status sent = app ? send_accepted(control->ours.get(), app->theirs.get(), params->version, params->cipher)
                    : app.error();
  (void)control->ours.close();
  if (!sent) {
    log.warn("STARTTLS handoff failed ip={}: {}", config.ip, sent.message());
    return wait_program(*pid);
  }
  (void)app->theirs.close();  // the program holds the only other end now
  return relay_and_reap(ssl.get(), std::move(app->ours), *pid, options, config, log);
}

}  // namespace

int serve(const Options& options, const ServeConfig& config, const Log& log) {
  // Built for every connection: a certificate replaced on disk serves the next client.
  auto ctx = make_server_context(config.tls);
  if (!ctx) {
    log.fatal("{}", ctx.error().message());
    return 111;
  }
  return options.implicit ? serve_implicit(options, config, ctx->get(), log)
                          : serve_on_request(options, config, ctx->get(), log);
}

}  // namespace tikimail
