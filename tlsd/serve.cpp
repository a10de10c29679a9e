// tlsd/serve.cpp: the two modes. The key is loaded and the handshake done with tlsd's
// starting privileges (root in a root install, so that only root can read the keys, including
// the SNI ones read during the handshake); -U/-G take effect before the first relayed byte.
// In on-request mode nothing of OpenSSL runs before the program asks: most MX sessions never do.
#include "tlsd/serve.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/capability.h"
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

// The TLS side of one connection. The context's SNI callback points into `config`, so the
// three are filled in place and die together (the connection first, then the context).
struct TlsSetup {
  ServeConfig config;
  SslCtx ctx;
  Ssl ssl;
};

// Reads the control files and builds the context and this connection's SSL object: every
// OpenSSL call before the handshake. Built per connection, so a certificate replaced on
// disk serves the next client. Errors name the file, with OpenSSL's reason.
Status prepare_tls(TlsSetup& tls) {
  auto config = ServeConfig::load();
  if (!config) return Status::temporary("cannot read configuration: " + config.error().message());
  tls.config = std::move(*config);
  auto ctx = make_server_context(tls.config.tls);
  if (!ctx) return ctx.error();
  tls.ctx = std::move(*ctx);
  tls.ssl = Ssl(SSL_new(tls.ctx.get()));
  if (!tls.ssl) return Status::temporary("SSL_new: " + openssl_reason("out of memory"));
  return Status::ok();
}

// Relays until both directions are done and closes the program's socket (it reads EOF).
void relay_to_end(const TlsSetup& tls, Fd app, const std::string& ip, const Log& log) {
  RelayEnd end = relay(tls.ssl.get(), 0, 1, app.get(), std::chrono::seconds(tls.config.idle_seconds));
  // A normal close is no event: tcpserver logs the end of every connection.
  if (end.why == RelayEnd::Why::kIdle || end.why == RelayEnd::Why::kClientGone || end.why == RelayEnd::Why::kAppGone)
    log.info("closed ip={} why={} reason={} to_app={} to_client={}", ip, why_text(end.why), log_safe(end.reason),
             end.to_app, end.to_client);
  (void)app.close();
}

// Drops -U/-G, relays, and reaps the program.
int relay_and_reap(const TlsSetup& tls, Fd app, pid_t pid, const Options& options, const std::string& ip,
                   const Log& log) {
  if (options.self) {
    if (Status s = drop_privileges(*options.self); !s) {
      log.fatal("cannot drop privileges: {}", s.message());
      (void)app.close();
      wait_program(pid);
      return 111;
    }
  }
  relay_to_end(tls, std::move(app), ip, log);
  return wait_program(pid);
}

// After the program's request on `control`: the control files, the certificate and key, and
// OpenSSL, then the handshake on fds 0/1 and the answer. A configuration that does not load
// fails this STARTTLS like a failed handshake: the program gets N with the reason, and nothing
// more reaches the client from tlsd. On success *app is our end of the program's new
// connection; the control socket is closed either way.
bool hand_over(TlsSetup& tls, Fd control, Fd* app, const std::string& ip, const Log& log) {
  if (Status s = prepare_tls(tls); !s) {
    log.warn("STARTTLS refused ip={} reason={}", ip, s.message());
    (void)send_refused(control.get(), s.message());
    return false;
  }
  auto params = accept_tls(tls.ssl.get(), 0, 1, Deadline::after_seconds(tls.config.handshake_seconds));
  if (!params) {
    log.info("handshake failed ip={} reason={}", ip, log_safe(params.error().message()));
    (void)send_refused(control.get(), log_safe(params.error().message()));
    return false;
  }
  log.info("handshake ok version={} cipher={} sni={} ip={}", params->version, params->cipher,
           params->sni.empty() ? "-" : params->sni, ip);
  auto pair = make_socket_pair();
  Status sent = pair ? send_accepted(control.get(), pair->theirs.get(), params->version, params->cipher)
                     : pair.error();
  (void)control.close();
  if (!sent) {
    log.warn("STARTTLS handoff failed ip={}: {}", ip, sent.message());
    return false;
  }
  (void)pair->theirs.close();  // the program holds the only other end now
  *app = std::move(pair->ours);
  return true;
}

int serve_implicit(const Options& options, const std::string& ip, const Log& log) {
  TlsSetup tls;
  if (Status s = prepare_tls(tls); !s) {
    log.fatal("{}", s.message());
    return 111;
  }
  auto params = accept_tls(tls.ssl.get(), 0, 1, Deadline::after_seconds(tls.config.handshake_seconds));
  if (!params) {
    log.info("handshake failed ip={} reason={}", ip, log_safe(params.error().message()));
    return 1;
  }
  log.info("handshake ok version={} cipher={} sni={} ip={}", params->version, params->cipher,
           params->sni.empty() ? "-" : params->sni, ip);
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
  return relay_and_reap(tls, std::move(pair->ours), *pid, options, ip, log);
}

int serve_on_request(const Options& options, const std::string& ip, const Log& log) {
  // A missing certificate or key stops tlsd before the program runs, as in implicit mode.
  // Opening the two files is all: parsing them waits for a request that may never come.
  if (Status s = check_key_files(kTlsDir); !s) {
    log.fatal("{}", s.message());
    return 111;
  }
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
  // Only now the control files, the certificate and key (still with the starting privileges),
  // and OpenSSL.
  TlsSetup tls;
  Fd app;
  if (!hand_over(tls, std::move(control->ours), &app, ip, log)) return wait_program(*pid);
  return relay_and_reap(tls, std::move(app), *pid, options, ip, log);
}

int serve_started(const std::string& ip, const Log& log) {
  // Nobody of our uid (the program that started us) may read our memory: the key while we
  // hold it, the session keys afterwards. A file capability makes us non-dumpable already.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  struct stat st;
  if (::fstat(kStartedControlFd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
    log.fatal("-s: fd {} is not the control socket", kStartedControlFd);
    return 111;
  }
  Fd control(kStartedControlFd);
  ::fcntl(control.get(), F_SETFD, FD_CLOEXEC);
  auto request = wait_for_request(control.get(), -1);
  if (!request || *request != Request::kStartTls) {
    if (!request) log.warn("{}", request.error().message());
    return request ? 0 : 111;
  }
  TlsSetup tls;
  Fd app;
  bool ok = hand_over(tls, std::move(control), &app, ip, log);
  // The keys are read (the SNI ones during the handshake): the file capability that let us
  // read them goes for good, whatever happens next.
  if (Status s = drop_capabilities(); !s) {
    log.fatal("{}", s.message());
    return 111;
  }
  if (!ok) return 1;
  relay_to_end(tls, std::move(app), ip, log);
  return 0;
}

}  // namespace

int serve(const Options& options, const std::string& ip, const Log& log) {
  // Both modes, before anything is written: neither the program's replies (on fds 0/1 before
  // STARTTLS) nor tlsd's records wait for the client's delayed ACK (Nagle's algorithm).
  for (int fd : {0, 1})
    if (Status s = set_no_delay(fd); !s) log.warn("fd {}: {}", fd, s.message());
  if (options.started) return serve_started(ip, log);
  return options.implicit ? serve_implicit(options, ip, log) : serve_on_request(options, ip, log);
}

}  // namespace tikimail
