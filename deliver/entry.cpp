// deliver/entry.cpp: one entry, recipient by recipient, each finished one recorded on disk
// before the next starts; then the notices and the retry state.
#include "deliver/entry.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <map>
#include <optional>

#include "common/address.h"
#include "common/done_file.h"
#include "common/dsn.h"
#include "common/fd.h"
#include "common/queue_file.h"
#include "common/queue_proto.h"
#include "common/queue_state.h"
#include "deliver/local.h"
#include "deliver/schedule.h"

namespace tikimail {

namespace {

// A domain whose connection slots are all taken is tried again after 5 to 15 seconds.
constexpr time_t kThrottleWait = 5;
constexpr time_t kThrottleJitter = 11;

// Removes a finished entry in the order queue/README.md fixes. todo/<id> holds the message and
// the envelope; it is unlinked and todo/ synced before done/ goes: a crash can then leave
// done/ without todo/ (garbage, removed later) but never todo/ without its done/, which
// would deliver every recipient again.
Status remove_entry(const std::string& queue_dir, const std::string& id) {
  std::string todo = queue_dir + "/todo/" + id;
  // The file goes into queue/pool/ for queue to refill, or away (common/queue_file.h).
  if (Status s = retire_entry_file(queue_dir, todo, pool_hint(id)); !s) return s;
  if (Status s = sync_dir(queue_dir + "/todo"); !s) return s;
  for (const char* sub : {"/done/", "/info/", "/bounce/"}) {
    std::string path = queue_dir + sub + id;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Status::from_errno("unlink " + path, errno);
  }
  return Status::ok();
}

// ` relay=host reply="..."` for a remote's answer, ` reason="..."` for our own.
std::string describe(const RemoteResult& r) {
  std::string out;
  if (!r.host.empty()) out += " relay=" + r.host;
  out += fmt::format(" {}=\"{}\"", r.from_remote ? "reply" : "reason", r.text);
  return out;
}

// The work of one child on one entry.
class EntryRun {
 public:
  EntryRun(const std::string& queue_dir, const std::string& id, const EntryContext& ctx, const Log& log)
      : queue_dir_(queue_dir), id_(id), ctx_(ctx), log_(log), now_(ctx.now), started_(::time(nullptr)),
        done_path_(queue_dir + "/done/" + id), info_path_(queue_dir + "/info/" + id),
        bounce_path_(queue_dir + "/bounce/" + id) {}

  int run(MaildirWriter& writer);

 private:
  bool due(size_t i) const;
  // Recipient i is finished: done/<id>, forgotten in info. False when the record failed.
  bool finish(size_t i, bool delivered = false);
  bool record_done(size_t i);
  // The entry is not removed after all: the last recipient's done/ line is written now.
  bool record_unrecorded();
  // Recipient i failed for good: a bounce record (unless no notice can go), then finish.
  bool fail(size_t i, const RemoteResult& r, const std::string& what);
  // Recipient i failed temporarily: its state grows, or it fails for good past the lifetime.
  bool defer(size_t i, const RemoteResult& r);
  bool deliver_locals(MaildirWriter& writer, std::map<std::string, std::vector<size_t>>* remote);
  bool deliver_remotes(const std::map<std::string, std::vector<size_t>>& remote);
  bool deliver_group(const std::string& domain, const std::vector<size_t>& rcpts, RemoteSlots* slots);
  bool throttle(const std::vector<size_t>& rcpts);
  // The facts every notice about this entry carries, for `target`; the recipients are added.
  DsnInput notice_input(DsnInput::Kind kind, const NoticeTarget& target) const;
  void warn_delay();
  bool send_bounce();  // false: a notice is still pending
  std::string rcpt_label(size_t i) const { return log_safe(ascii_lower(env_.rcpts[i])); }
  std::string delay() const { return fmt::format(" delay={}s", now_ - queued_at_); }

  const std::string& queue_dir_;
  const std::string& id_;
  const EntryContext& ctx_;
  const Log& log_;
  time_t now_;            // ctx.now, moved on by the time remote calls take
  const time_t started_;  // the wall clock when the run began
  const std::string done_path_, info_path_, bounce_path_;
  Envelope env_;
  LocalConfig local_;
  NoticeConfig notice_config_;
  NoticeTarget failure_target_;
  Fd entry_;                   // todo/<id>, locked; its first message_bytes_ are the message
  uint64_t message_bytes_ = 0;
  EntryInfo info_;
  std::vector<bool> done_;
  std::map<size_t, std::string> routed_;  // remote recipients: the address to send to
  size_t unfinished_ = 0;               // recipients not finished yet
  std::optional<size_t> unrecorded_;    // finished, its done/ line left to the removal
  bool bounce_records_ = false;         // bounce/<id> has (or may have) records
  time_t queued_at_ = 0;
  bool left_ = false;
};

bool EntryRun::due(size_t i) const {
  if (ctx_.force) return true;
  auto it = info_.rcpts.find(i);
  return it == info_.rcpts.end() || it->second.next_try <= now_;
}

bool EntryRun::finish(size_t i, bool delivered) {
  info_.rcpts.erase(i);
  --unfinished_;
  // The last recipient, delivered, with no notice pending: the entry is removed next, and
  // the synced unlink of todo/<id> records it. A crash before that delivers it again, as a
  // crash before its done/ line would. That saves two syncs (the line, and done/ for a new
  // file) on every single-recipient message.
  if (delivered && unfinished_ == 0 && !bounce_records_) {
    unrecorded_ = i;
    return true;
  }
  return record_done(i);
}

bool EntryRun::record_done(size_t i) {
  if (Status s = append_done(done_path_, i); !s) {
    log_.warn("{} cannot record rcpt={} as finished: {}", id_, rcpt_label(i), s.message());
    return false;
  }
  return true;
}

bool EntryRun::record_unrecorded() {
  if (!unrecorded_) return true;
  size_t i = *unrecorded_;
  unrecorded_.reset();
  return record_done(i);
}

bool EntryRun::fail(size_t i, const RemoteResult& r, const std::string& what) {
  std::string notice = failure_target_.drop ? fmt::format(" notice=none ({})", failure_target_.why) : "";
  log_.info("{} failed rcpt={}{}{}{}{}", id_, rcpt_label(i), what, describe(r), delay(), notice);
  if (!failure_target_.drop) {
    bounce_records_ = true;
    // The record is on disk before done/<id> says finished: a crash in between tries the
    // recipient again (and may record it twice: the last record counts), never loses it.
    if (Status s = append_bounce_record(bounce_path_, i, r); !s) {
      log_.warn("{} cannot record the failure of rcpt={}: {}", id_, rcpt_label(i), s.message());
      return false;
    }
  }
  return finish(i);
}

bool EntryRun::defer(size_t i, const RemoteResult& r) {
  RecipientState& st = info_.rcpts[i];
  ++st.attempts;
  if (st.first_failure == 0) st.first_failure = now_;
  st.last_try = now_;
  st.last = r;
  st.last.kind = RemoteResult::Kind::kTemporary;
  if (now_ - queued_at_ >= static_cast<time_t>(ctx_.config.queuelifetime)) {
    RemoteResult expired = st.last;
    if (!expired.from_remote)
      expired.text = printable(fmt::format("gave up after {}s in the queue: {}", now_ - queued_at_, r.text));
    return fail(i, expired, " expired=yes");
  }
  auto wait = Schedule::delay(st.attempts, std::chrono::seconds(ctx_.config.retry_base),
                              std::chrono::seconds(ctx_.config.retry_max));
  st.next_try = now_ + wait.count();
  left_ = true;
  log_.info("{} deferred rcpt={}{} attempts={} next={}s{}", id_, rcpt_label(i), describe(r), st.attempts,
            wait.count(), delay());
  return true;
}

bool EntryRun::deliver_locals(MaildirWriter& writer, std::map<std::string, std::vector<size_t>>* remote) {
  for (size_t i = 0; i < env_.rcpts.size(); ++i) {
    if (done_[i]) continue;
    if (!due(i)) {
      left_ = true;
      continue;
    }
    Route route = route_rcpt(env_.rcpts[i], local_);
    std::string mapped;
    if (route.address != ascii_lower(env_.rcpts[i])) mapped = " to=" + log_safe(route.address);
    bool ok = true;
    switch (route.kind) {
      case Route::Kind::kLocal: {
        auto file = deliver_local(route, env_.sender, entry_.get(), message_bytes_, writer);
        if (!file) {
          ok = defer(i, own_result(RemoteResult::Kind::kTemporary, "4.2.0", file.error().message()));
          break;
        }
        log_.info("{} delivered rcpt={}{} maildir={} bytes={}{}", id_, rcpt_label(i), mapped, route.maildir,
                  file->bytes, delay());
        ok = finish(i, true);
        break;
      }
      case Route::Kind::kRemote: {
        auto [local, domain] = split_address(route.address);
        if (domain.empty() || local.empty()) {
          ok = fail(i, own_result(RemoteResult::Kind::kPermanent, "5.1.3", "no domain in the address"), mapped);
          break;
        }
        (*remote)[std::string(domain)].push_back(i);
        // What the remote gets: the address as given, only its domain lowercased (a local
        // part is the destination's to interpret, RFC 5321 2.4), or the postmaster mapping.
        if (mapped.empty()) {
          auto [given_local, given_domain] = split_address(env_.rcpts[i]);
          routed_[i] = std::string(given_local) + "@" + ascii_lower(given_domain);
        } else {
          routed_[i] = route.address;
        }
        break;
      }
      case Route::Kind::kDeferred:
        ok = defer(i, own_result(RemoteResult::Kind::kTemporary, "4.3.0", route.reason));
        break;
      case Route::Kind::kFailed:
        ok = fail(i, own_result(RemoteResult::Kind::kPermanent, "5.1.1", route.reason), mapped);
        break;
    }
    if (!ok) return false;
  }
  return true;
}

bool EntryRun::throttle(const std::vector<size_t>& rcpts) {
  unsigned char jitter = 0;
  (void)::getrandom(&jitter, 1, 0);
  bool expired = now_ - queued_at_ >= static_cast<time_t>(ctx_.config.queuelifetime);
  for (size_t i : rcpts) {
    RecipientState& st = info_.rcpts[i];  // a wait for a slot is not an attempt
    if (st.last.text.empty()) st.last = own_result(RemoteResult::Kind::kTemporary, "4.4.5", "waiting for a connection slot");
    if (expired) {  // a domain whose slots never free up still ends within the lifetime
      if (!defer(i, st.last)) return false;
      continue;
    }
    st.next_try = now_ + kThrottleWait + jitter % kThrottleJitter;
    left_ = true;
  }
  return true;
}

bool EntryRun::deliver_group(const std::string& domain, const std::vector<size_t>& rcpts, RemoteSlots* slots) {
  if (!ctx_.remote) {
    for (size_t i : rcpts)
      if (!defer(i, own_result(RemoteResult::Kind::kTemporary, "4.3.0", "remote delivery is not set up")))
        return false;
    return true;
  }
  if (slots != nullptr && !slots->acquire(domain, ctx_.config.remote_global, ctx_.config.domain_limit(domain))) {
    log_.info("{} throttled domain={} rcpts={} reason=\"every connection slot is taken\"", id_, log_safe(domain),
              rcpts.size());
    return throttle(rcpts);
  }
  // deliver-remote gets the entry through an open file of its own: our fd carries the entry's
  // lock (flock belongs to the open file), which must end with this child, not live on in a
  // deliver-remote that outlives it (deliver/README.md).
  auto own = open_file(queue_dir_ + "/todo/" + id_, O_RDONLY);
  if (!own) {
    if (slots != nullptr) slots->release();
    for (size_t i : rcpts)
      if (!defer(i, own_result(RemoteResult::Kind::kTemporary, "4.3.0", own.error().message()))) return false;
    return true;
  }
  RemoteCall call{domain, env_.sender, {}, own->get(), message_bytes_, id_};
  for (size_t i : rcpts) call.rcpts.push_back(routed_.at(i));
  auto results = ctx_.remote(call);
  (void)own->close();
  if (slots != nullptr) slots->release();
  // A call can take long: later waits and the lifetime count from now.
  now_ = std::max(now_, ctx_.now + (::time(nullptr) - started_));
  // Every answer is recorded even when one record fails: a delivered recipient left
  // unrecorded would be delivered again.
  bool all_ok = true;
  for (size_t k = 0; k < rcpts.size(); ++k) {
    size_t i = rcpts[k];
    if (!results) {
      all_ok &= defer(i, own_result(RemoteResult::Kind::kTemporary, "4.4.0", results.error().message()));
      continue;
    }
    const RemoteResult& r = (*results)[k];
    bool ok = true;
    switch (r.kind) {
      case RemoteResult::Kind::kDelivered:
        log_.info("{} delivered rcpt={}{}{}", id_, rcpt_label(i), describe(r), delay());
        ok = finish(i, true);
        break;
      case RemoteResult::Kind::kTemporary:
        ok = defer(i, r);
        break;
      case RemoteResult::Kind::kPermanent:
        ok = fail(i, r, "");
        break;
    }
    all_ok &= ok;
  }
  return all_ok;
}

bool EntryRun::deliver_remotes(const std::map<std::string, std::vector<size_t>>& remote) {
  if (remote.empty()) return true;
  std::optional<RemoteSlots> slots;
  if (!ctx_.slots_path.empty()) {
    auto opened = RemoteSlots::open(ctx_.slots_path);
    if (!opened) log_.warn("{} no connection limits: {}", id_, opened.error().message());
    else slots.emplace(std::move(*opened));
  }
  for (const auto& [domain, all] : remote) {
    for (size_t start = 0; start < all.size(); start += kMaxRemoteRcpts) {
      std::vector<size_t> chunk(all.begin() + start, all.begin() + std::min(all.size(), start + kMaxRemoteRcpts));
      if (!deliver_group(domain, chunk, slots ? &*slots : nullptr)) return false;
    }
  }
  return true;
}

DsnInput EntryRun::notice_input(DsnInput::Kind kind, const NoticeTarget& target) const {
  DsnInput in;
  in.kind = kind;
  in.reporting_mta = notice_config_.me;
  in.queue_id = id_;
  in.to = target.envelope.rcpts.front();
  in.original_sender = env_.sender;
  in.arrival = queued_at_;
  in.max_original = notice_config_.max_original;
  return in;
}

// One delay warning per entry, when control/warnafter is set and has passed.
void EntryRun::warn_delay() {
  if (ctx_.config.warnafter == 0 || info_.warned != 0 || !ctx_.inject) return;
  if (now_ - queued_at_ < static_cast<time_t>(ctx_.config.warnafter)) return;
  NoticeTarget target = notice_target(env_, notice_config_, true);
  if (target.drop) return;
  DsnInput in = notice_input(DsnInput::Kind::kDelay, target);
  in.retry_until = queued_at_ + ctx_.config.queuelifetime;
  for (const auto& [i, st] : info_.rcpts) {
    if (st.attempts == 0) continue;
    in.rcpts.push_back(DsnRecipient{ascii_lower(env_.rcpts[i]), st.last.status, st.last.host, st.last.from_remote,
                                    st.last.text, st.last_try});
  }
  if (in.rcpts.empty()) return;
  auto message = compose_dsn(in, entry_.get(), message_bytes_, now_);
  Status s = message ? ctx_.inject(target.envelope, *message) : message.error();
  if (!s) {
    log_.warn("{} delay notice not sent: {}", id_, s.message());
    return;
  }
  info_.warned = now_;
  log_.info("{} delay notice to={} rcpts={}", id_, log_safe(in.to), in.rcpts.size());
}

bool EntryRun::send_bounce() {
  auto records = read_bounce_records(bounce_path_, env_.rcpts.size());
  if (!records) {
    log_.warn("{} {}", id_, records.error().message());
    return false;
  }
  if (records->empty()) {
    (void)::unlink(bounce_path_.c_str());
    return true;
  }
  if (failure_target_.drop || !ctx_.inject) {
    if (!ctx_.inject) return false;
    (void)::unlink(bounce_path_.c_str());
    return true;
  }
  DsnInput in = notice_input(DsnInput::Kind::kFailure, failure_target_);
  for (const auto& rec : *records) {
    const RemoteResult& r = rec.result;
    in.rcpts.push_back(DsnRecipient{ascii_lower(env_.rcpts[rec.index]), r.status, r.host, r.from_remote, r.text, now_});
  }
  auto message = compose_dsn(in, entry_.get(), message_bytes_, now_);
  Status s = message ? ctx_.inject(failure_target_.envelope, *message) : message.error();
  if (!s && !s.permanent_failure()) {
    log_.warn("{} bounce to={} not sent yet: {}", id_, log_safe(in.to), s.message());
    return false;
  }
  if (!s) log_.warn("{} bounce to={} dropped: {}", id_, log_safe(in.to), s.message());
  else
    log_.info("{} bounced to={} rcpts={}{}", id_, log_safe(in.to), in.rcpts.size(),
              failure_target_.envelope.mark == envelope_mark::kDoubleBounce ? " double=yes" : "");
  // Queued: the records go. A crash before this unlink sends the notice once more.
  if (::unlink(bounce_path_.c_str()) != 0 && errno != ENOENT)
    log_.warn("{} unlink {}: {}", id_, bounce_path_, std::strerror(errno));
  return true;
}

int EntryRun::run(MaildirWriter& writer) {
  const std::string todo_path = queue_dir_ + "/todo/" + id_;
  auto todo = open_file(todo_path, O_RDONLY);
  if (!todo) {
    if (todo.error().errno_value() == ENOENT) return entry_exit::kFinished;  // removed meanwhile
    log_.warn("{} {}", id_, todo.error().message());
    return entry_exit::kTrouble;
  }
  entry_ = std::move(*todo);
  if (::flock(entry_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return entry_exit::kBusy;
    log_.warn("{} flock {}: {}", id_, todo_path, std::strerror(errno));
    return entry_exit::kTrouble;
  }
  // The lock holder before us may have finished the entry and unlinked todo/<id> after we
  // opened it: then our fd names a removed file, and done/<id> is gone with it.
  struct stat st;
  if (::fstat(entry_.get(), &st) != 0) {
    log_.warn("{} fstat {}: {}", id_, todo_path, std::strerror(errno));
    return entry_exit::kTrouble;
  }
  if (st.st_nlink == 0) return entry_exit::kFinished;
  // Retired into the pool rather than unlinked, the file keeps its link, and queue may have
  // refilled it for another message already: only the file todo/<id> still names is ours.
  struct stat named;
  if (::stat(todo_path.c_str(), &named) != 0 || named.st_ino != st.st_ino || named.st_dev != st.st_dev)
    return entry_exit::kFinished;
  queued_at_ = st.st_mtime;

  // The one file holds the message, the envelope and the trailer (common/queue_file.h); the
  // same fd then serves as the message, read with pread up to message_bytes_ and no further.
  // A file that is not a complete entry, like a malformed envelope, stays queued and is
  // logged at every try: deleting it would lose mail on what may be a bug of ours, and an
  // administrator can look at it.
  auto layout = read_queue_file_layout(entry_.get(), todo_path);
  if (!layout) {
    log_.warn("{} {}", id_, layout.error().message());
    return entry_exit::kTrouble;
  }
  message_bytes_ = layout->message_bytes;
  auto decoded = decode_envelope(layout->envelope);
  if (decoded.exit_code != queue_exit::kOk) {
    log_.warn("{} malformed envelope in {} (code {})", id_, todo_path, decoded.exit_code);
    return entry_exit::kTrouble;
  }
  env_ = std::move(decoded.envelope);

  auto local = LocalConfig::load();
  auto notice = NoticeConfig::load();
  if (!local || !notice) {
    log_.warn("{} cannot read configuration: {}", id_, (!local ? local.error() : notice.error()).message());
    return entry_exit::kTrouble;
  }
  local_ = std::move(*local);
  notice_config_ = std::move(*notice);
  failure_target_ = notice_target(env_, notice_config_, false);

  auto done = read_done(done_path_, env_.rcpts.size());
  if (!done) {
    log_.warn("{} {}", id_, done.error().message());
    return entry_exit::kTrouble;
  }
  auto info = read_entry_info(info_path_, env_.rcpts.size());
  if (info) info_ = std::move(*info);
  else log_.warn("{} {} (retrying every recipient)", id_, info.error().message());
  for (size_t i = 0; i < env_.rcpts.size(); ++i)
    if ((*done)[i]) info_.rcpts.erase(i);

  done_ = std::move(*done);
  unfinished_ = static_cast<size_t>(std::count(done_.begin(), done_.end(), false));
  bounce_records_ = ::access(bounce_path_.c_str(), F_OK) == 0;

  std::map<std::string, std::vector<size_t>> remote;  // due remote recipients by domain
  if (!deliver_locals(writer, &remote) || !deliver_remotes(remote)) {
    record_unrecorded();
    if (Status s = write_entry_info(info_path_, info_); !s) log_.warn("{} {}", id_, s.message());
    return entry_exit::kTrouble;
  }

  warn_delay();
  bool pending_notice = !send_bounce();
  if (Status s = write_entry_info(info_path_, info_); !s) log_.warn("{} {}", id_, s.message());
  if (left_ || pending_notice) return record_unrecorded() ? entry_exit::kLeft : entry_exit::kTrouble;
  if (Status s = remove_entry(queue_dir_, id_); !s) {
    log_.warn("{} cannot remove the finished entry: {}", id_, s.message());
    record_unrecorded();
    return entry_exit::kTrouble;
  }
  log_.info("{} done", id_);
  return entry_exit::kFinished;
}

}  // namespace

int deliver_entry(const std::string& queue_dir, const std::string& id, const EntryContext& ctx,
                  MaildirWriter& writer, const Log& log) {
  EntryRun run(queue_dir, id, ctx, log);
  return run.run(writer);
}

}  // namespace tikimail
