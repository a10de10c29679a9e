// queue/server.cpp: the resident queue server (queue/README.md "The server").
#include "queue/server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/control.h"
#include "common/fd.h"
#include "common/queue_proto.h"
#include "queue/queue_dir.h"

namespace tikimail {

namespace {

volatile sig_atomic_t g_busy = 0;  // a worker is inside a handoff
volatile sig_atomic_t g_stop = 0;

// A worker told to stop leaves at once while it waits for a connection, and after its
// handoff otherwise: a message being stored is answered first.
void worker_on_term(int) {
  if (!g_busy) _exit(0);
  g_stop = 1;
}

void set_handler(int sig, void (*handler)(int)) {
  struct sigaction sa{};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: accept(2) returns on SIGTERM
  ::sigaction(sig, &sa, nullptr);
}

void answer(int conn, int code) {
  unsigned char byte = static_cast<unsigned char>(code);
  while (::send(conn, &byte, 1, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

// The request: up to kQueueServerRequestMax bytes ending in a newline, with exactly two fds.
// Returns false (and closes whatever came) on anything else.
bool read_request(int conn, std::string* msgid, Fd* message, Fd* envelope, std::string* why) {
  pollfd p{conn, POLLIN, 0};
  Deadline deadline = Deadline::after_seconds(kServerRequestSeconds);
  int n;
  while ((n = ::poll(&p, 1, deadline.poll_ms())) < 0 && errno == EINTR) {
  }
  if (n <= 0) {
    *why = n == 0 ? "no request in time" : std::string("poll: ") + std::strerror(errno);
    return false;
  }
  char data[kQueueServerRequestMax];
  std::vector<Fd> fds;  // every fd that came, closed unless handed out
  bool truncated = false;
  ssize_t got;
  while ((got = receive_with_fds(conn, data, sizeof data, 0, &fds, &truncated)) < 0 && errno == EINTR) {
  }
  if (got <= 0) {
    *why = got == 0 ? "closed before its request" : std::string("recvmsg: ") + std::strerror(errno);
    return false;
  }
  std::string_view text(data, static_cast<size_t>(got));
  if (truncated || fds.size() != 2 || text.back() != '\n') {
    *why = fmt::format("malformed request: {} bytes, {} fds", got, fds.size());
    return false;
  }
  // Only files that can neither block a read nor change under it: sealed memfds, as the client
  // sends. A pipe or a socket could hold this worker until the deadline; a file on a network
  // or FUSE filesystem, past it.
  for (const Fd& fd : fds) {
    struct stat st{};
    int seals = ::fcntl(fd.get(), F_GET_SEALS);
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || seals < 0 || (seals & kQueueServerSeals) != kQueueServerSeals) {
      *why = "malformed request: not a sealed memfd";
      return false;
    }
  }
  *msgid = std::string(text.substr(0, text.size() - 1));
  *message = std::move(fds[0]);
  *envelope = std::move(fds[1]);
  return true;
}

// One worker: accepts and serves until told to stop or kServerHandoffsPerWorker are done.
[[noreturn]] void worker(int listener, const Log& log) {
  set_handler(SIGTERM, worker_on_term);
  set_handler(SIGINT, worker_on_term);
  ::signal(SIGALRM, exit_on_alarm);  // the client sees the connection close unanswered (81)
  ::signal(SIGHUP, SIG_DFL);
  ::signal(SIGCHLD, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the parent's mask (sigwaitinfo) is not ours
  for (unsigned served = 0; served < kServerHandoffsPerWorker && !g_stop;) {
    int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      log.warn("accept: {}", std::strerror(errno));
      ::sleep(1);  // EMFILE, ENOBUFS: give the system a moment rather than spin
      continue;
    }
    g_busy = 1;
    (void)serve_handoff(conn, log);
    g_busy = 0;
    ++served;
  }
  _exit(0);
}

pid_t start_worker(int listener, const Log& log) {
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    // A worker whose parent is gone (killed, crashed) would go on accepting on a socket whose
    // name the restarted server has replaced: it is told to stop instead (SIGTERM: it answers
    // a handoff in progress first). The getppid check closes the window before the prctl.
    if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != parent) _exit(0);
    worker(listener, log);
  }
  if (pid < 0) log.warn("fork: {}", std::strerror(errno));
  return pid;
}

// Binds the listening socket at `path`, replacing a socket left by an earlier run (and only
// a socket: any other file there is an error).
Result<Fd> listen_at(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) return Status::permanent("bad socket path: " + path);
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Status::permanent(path + " exists and is not a socket");
    if (::unlink(path.c_str()) != 0) return Status::from_errno("unlink " + path, errno);
  }
  Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return Status::from_errno("socket", errno);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    return Status::from_errno("bind " + path, errno);
  // Who may connect is decided by the socket's directory (queue/README.md "The server").
  if (::chmod(path.c_str(), 0666) != 0) return Status::from_errno("chmod " + path, errno);
  if (::listen(sock.get(), SOMAXCONN) != 0) return Status::from_errno("listen " + path, errno);
  return sock;
}

}  // namespace

int serve_handoff(int conn_fd, const Log& log) {
  Fd conn(conn_fd);
  std::string msgid, why;
  Fd message, envelope;
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) peer.uid = static_cast<uid_t>(-1);
  if (!read_request(conn.get(), &msgid, &message, &envelope, &why)) {
    log.warn("handoff from uid {} refused: {}", static_cast<long>(peer.uid), why);
    answer(conn.get(), queue_exit::kReadError);
    return queue_exit::kReadError;
  }
  auto databytes = read_control_uint("control/databytes", 20971520);
  if (!databytes) {
    log.warn("cannot read configuration: {}", databytes.error().message());
    answer(conn.get(), queue_exit::kConfig);
    return queue_exit::kConfig;
  }
  std::string id = choose_message_id(msgid.c_str());
  ::alarm(kServerReadSeconds + 60);
  int code = store_and_log(QueueDir("queue"), message.get(), envelope.get(), id, *databytes + kChainHeaderRoom,
                           Deadline::after_seconds(kServerReadSeconds),
                           fmt::format(" uid={}", static_cast<long>(peer.uid)), log);
  ::alarm(0);
  answer(conn.get(), code);
  return code;
}

int serve_queue(const std::string& path, unsigned workers, const Log& log) {
  // Installed set-uid, bin/queue must never serve for whoever runs it: the server unlinks
  // and binds a path it is given, as tiki-queue. It runs only as the user it is.
  if (::getauxval(AT_SECURE) != 0 || ::getuid() != ::geteuid()) {
    log.fatal("the server runs only as its own user (chpst -u in its run script), not set-uid");
    return 100;
  }
  if (workers == 0 || workers > kServerMaxWorkers) {
    log.fatal("workers must be 1 to {}", kServerMaxWorkers);
    return 100;
  }
  ::umask(027);
  ::signal(SIGPIPE, SIG_IGN);
  auto sock = listen_at(path);
  if (!sock) {
    log.fatal("{}", sock.error().message());
    return 111;
  }
  // The parent takes its signals with sigwaitinfo: blocked from here on (so that none is lost
  // between two waits), unblocked in each worker once it has set its own handlers. SIGHUP and
  // SIGALRM (`sv hup`, `sv alarm`) mean nothing to it: control files are read per handoff.
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGCHLD, SIGHUP, SIGALRM}) sigaddset(&set, sig);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  std::vector<pid_t> pids;
  auto fill = [&] {
    while (pids.size() < workers) {
      pid_t pid = start_worker(sock->get(), log);
      if (pid < 0) break;  // logged; tried again at the next signal or second
      pids.push_back(pid);
    }
  };
  fill();
  log.info("serving on {} with {} workers", path, pids.size());
  const timespec second{1, 0};
  for (;;) {
    int sig = pids.size() < workers ? ::sigtimedwait(&set, nullptr, &second) : ::sigwaitinfo(&set, nullptr);
    if (sig == SIGTERM || sig == SIGINT) break;
    bool failed = false;
    int status = 0;
    for (pid_t pid; (pid = ::waitpid(-1, &status, WNOHANG)) > 0;) {
      std::erase(pids, pid);
      if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0)) {
        log.warn("worker {} ended with status {}", pid,
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        failed = true;
      }
    }
    if (failed) ::nanosleep(&second, nullptr);  // a worker that keeps failing is not restarted in a tight loop
    fill();
  }
  // No new connection reaches a worker after this; those already accepted are answered.
  (void)::unlink(path.c_str());
  for (pid_t pid : pids) ::kill(pid, SIGTERM);
  for (pid_t pid : pids)
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  log.info("stopped");
  return 0;
}

}  // namespace tikimail
