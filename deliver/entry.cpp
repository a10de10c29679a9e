// deliver/entry.cpp: one entry, recipient by recipient, each finished one recorded on disk
// before the next starts.
#include "deliver/entry.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/address.h"
#include "common/fd.h"
#include "common/queue_proto.h"
#include "common/done_file.h"
#include "deliver/local.h"

namespace tikimail {

namespace {

// Envelopes are far smaller: smtpd limits recipients and path lengths.
constexpr size_t kMaxEnvelope = 16 * 1024 * 1024;

constexpr std::string_view kRemoteReason = "remote delivery not available yet";

// Removes a finished entry in the order queue/README.md fixes. todo/ is synced before done/
// goes: a crash can then leave done/ or mess/ without todo/ (garbage, removed later) but never
// todo/ without its done/, which would deliver every recipient again.
Status remove_entry(const std::string& queue_dir, const std::string& id) {
  std::string todo = queue_dir + "/todo/" + id;
  if (::unlink(todo.c_str()) != 0 && errno != ENOENT) return Status::from_errno("unlink " + todo, errno);
  if (Status s = sync_dir(queue_dir + "/todo"); !s) return s;
  for (const char* sub : {"/done/", "/mess/"}) {
    std::string path = queue_dir + sub + id;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Status::from_errno("unlink " + path, errno);
  }
  return Status::ok();
}

}  // namespace

int deliver_entry(const std::string& queue_dir, const std::string& id, MaildirWriter& writer,
                  const Log& log) {
  const std::string todo_path = queue_dir + "/todo/" + id;
  const std::string done_path = queue_dir + "/done/" + id;
  const std::string mess_path = queue_dir + "/mess/" + id;

  auto todo = open_file(todo_path, O_RDONLY);
  if (!todo) {
    if (todo.error().errno_value() == ENOENT) return entry_exit::kFinished;  // removed meanwhile
    log.warn("{} {}", id, todo.error().message());
    return entry_exit::kTrouble;
  }
  if (::flock(todo->get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return entry_exit::kBusy;
    log.warn("{} flock {}: {}", id, todo_path, std::strerror(errno));
    return entry_exit::kTrouble;
  }
  // The lock holder before us may have finished the entry and unlinked todo/<id> after we
  // opened it: then our fd names a removed file, and done/<id> is gone with it.
  struct stat st;
  if (::fstat(todo->get(), &st) != 0) {
    log.warn("{} fstat {}: {}", id, todo_path, std::strerror(errno));
    return entry_exit::kTrouble;
  }
  if (st.st_nlink == 0) return entry_exit::kFinished;

  auto envelope_bytes = read_file(todo_path, kMaxEnvelope);
  if (!envelope_bytes) {
    log.warn("{} {}", id, envelope_bytes.error().message());
    return entry_exit::kTrouble;
  }
  // A malformed envelope stays queued and is logged at every try: deleting it would lose
  // mail on what may be a bug of ours, and an administrator can look at it.
  auto decoded = decode_envelope(*envelope_bytes);
  if (decoded.exit_code != queue_exit::kOk) {
    log.warn("{} malformed envelope in {} (code {})", id, todo_path, decoded.exit_code);
    return entry_exit::kTrouble;
  }
  const Envelope& env = decoded.envelope;

  auto config = LocalConfig::load();
  if (!config) {
    log.warn("{} cannot read configuration: {}", id, config.error().message());
    return entry_exit::kTrouble;
  }
  auto done = read_done(done_path, env.rcpts.size());
  if (!done) {
    log.warn("{} {}", id, done.error().message());
    return entry_exit::kTrouble;
  }
  auto mess = open_file(mess_path, O_RDONLY);
  if (!mess) {
    log.warn("{} {}", id, mess.error().message());
    return entry_exit::kTrouble;
  }

  bool left = false;
  for (size_t i = 0; i < env.rcpts.size(); ++i) {
    if ((*done)[i]) continue;
    const std::string rcpt = log_safe(ascii_lower(env.rcpts[i]));
    Route route = route_rcpt(env.rcpts[i], *config);
    std::string mapped;
    if (route.address != ascii_lower(env.rcpts[i])) mapped = " to=" + log_safe(route.address);
    switch (route.kind) {
      case Route::Kind::kLocal: {
        auto file = deliver_local(route, env.sender, mess->get(), writer);
        if (!file) {
          log.info("{} deferred rcpt={}{} reason=\"{}\"", id, rcpt, mapped, log_safe(file.error().message()));
          left = true;
          continue;
        }
        log.info("{} delivered rcpt={}{} maildir={} bytes={}", id, rcpt, mapped, route.maildir, file->bytes);
        break;
      }
      case Route::Kind::kRemote:
        log.info("{} deferred rcpt={}{} reason=\"{}\"", id, rcpt, mapped, kRemoteReason);
        left = true;
        continue;
      case Route::Kind::kDeferred:
        log.info("{} deferred rcpt={}{} reason=\"{}\"", id, rcpt, mapped, route.reason);
        left = true;
        continue;
      case Route::Kind::kFailed:
        log.info("{} failed rcpt={}{} reason=\"{}\"", id, rcpt, mapped, route.reason);
        break;
    }
    // Delivered or failed for good: recorded before the next recipient. A crash between the
    // Maildir rename and this append delivers this one recipient again after a restart.
    if (Status s = append_done(done_path, i); !s) {
      log.warn("{} cannot record rcpt={} as finished: {}", id, rcpt, s.message());
      return entry_exit::kTrouble;
    }
  }
  if (left) return entry_exit::kLeft;
  if (Status s = remove_entry(queue_dir, id); !s) {
    log.warn("{} cannot remove the finished entry: {}", id, s.message());
    return entry_exit::kTrouble;
  }
  log.info("{} done", id);
  return entry_exit::kFinished;
}

}  // namespace tikimail
