// queue/queue_list.cpp: the read-only walk over todo/, done/, info/ and bounce/ behind mailq.
#include "queue/queue_list.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <memory>

#include "common/done_file.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/queue_file.h"
#include "common/queue_proto.h"
#include "common/queue_state.h"

namespace tikimail {

namespace {

// Far above any real done file; a bigger one is reported, not read.
constexpr size_t kMaxListedFile = 16 * 1024 * 1024;

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

Result<std::vector<std::string>> todo_ids(const std::string& dir) {
  std::unique_ptr<DIR, DirCloser> d(::opendir(dir.c_str()));
  if (!d) return Status::from_errno("opendir " + dir, errno);
  std::vector<std::string> ids;
  errno = 0;
  while (struct dirent* e = ::readdir(d.get())) {
    if (valid_message_id(e->d_name)) ids.emplace_back(e->d_name);
    errno = 0;
  }
  if (errno != 0) return Status::from_errno("readdir " + dir, errno);
  std::sort(ids.begin(), ids.end());
  return ids;
}

// Reads one entry; false when it vanished (deliver removed it meanwhile).
bool read_entry(const std::string& queue_dir, const std::string& id, ListedEntry* entry) {
  entry->id = id;
  const std::string todo = queue_dir + "/todo/" + id;
  auto file = open_file(todo, O_RDONLY);
  if (!file) {
    if (file.error().errno_value() == ENOENT) return false;
    entry->problem = file.error().message();
    return true;
  }
  // One open file: its mtime, its trailer (the message size) and its envelope all come from
  // the same entry, even if deliver removes the name meanwhile.
  struct stat st;
  if (::fstat(file->get(), &st) != 0) {
    entry->problem = Status::from_errno("fstat " + todo, errno).message();
    return true;
  }
  entry->queued_at = st.st_mtime;
  auto layout = read_queue_file_layout(file->get(), todo);
  if (!layout) {
    entry->problem = layout.error().message();
    return true;
  }
  EnvelopeDecode decoded = decode_envelope(layout->envelope);
  if (decoded.exit_code == queue_exit::kEnvelopeFormat) {
    entry->problem = "malformed envelope " + todo;
    return true;
  }
  entry->bytes = layout->message_bytes;
  entry->sender = decoded.envelope.sender;
  entry->mark = decoded.envelope.mark;
  const std::string done_path = queue_dir + "/done/" + id;
  std::vector<bool> done(decoded.envelope.rcpts.size(), false);
  if (auto text = read_file(done_path, kMaxListedFile)) {
    done = parse_done(*text, done.size());
  } else if (text.error().errno_value() != ENOENT) {
    entry->problem = text.error().message();
  }
  const size_t count = decoded.envelope.rcpts.size();
  auto info = read_entry_info(queue_dir + "/info/" + id, count);
  if (!info) entry->problem = info.error().message();
  auto failed = read_bounce_records(queue_dir + "/bounce/" + id, count);
  if (!failed) entry->problem = failed.error().message();
  for (size_t i = 0; i < count; ++i) {
    ListedRecipient r;
    r.address = decoded.envelope.rcpts[i];
    if (info) {
      if (auto it = info->rcpts.find(i); it != info->rcpts.end()) {
        r.state = ListedRecipient::State::kDeferred;
        r.attempts = it->second.attempts;
        r.next_try = it->second.next_try;
        r.last = it->second.last;
      }
    }
    if (done[i]) r.state = ListedRecipient::State::kDone;
    if (failed) {
      for (const auto& rec : *failed) {
        if (rec.index != i) continue;
        r.state = ListedRecipient::State::kFailed;
        r.last = rec.result;
      }
    }
    entry->rcpts.push_back(std::move(r));
  }
  return true;
}

}  // namespace

Result<std::vector<ListedEntry>> list_queue(const std::string& queue_dir) {
  auto ids = todo_ids(queue_dir + "/todo");
  if (!ids) return ids.error();
  std::vector<ListedEntry> entries;
  for (const auto& id : *ids) {
    ListedEntry entry;
    if (read_entry(queue_dir, id, &entry)) entries.push_back(std::move(entry));
  }
  return entries;
}

std::string format_age(time_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 60) return fmt::format("{}s", seconds);
  if (seconds < 3600) return fmt::format("{}m{:02}s", seconds / 60, seconds % 60);
  if (seconds < 86400) return fmt::format("{}h{:02}m", seconds / 3600, seconds % 3600 / 60);
  return fmt::format("{}d{:02}h", seconds / 86400, seconds % 86400 / 3600);
}

std::string format_entry(const ListedEntry& entry, time_t now) {
  if (!entry.problem.empty() && entry.rcpts.empty())
    return fmt::format("{}  unreadable: {}\n", entry.id, log_safe(entry.problem));
  std::string mark = entry.mark.empty() ? "" : fmt::format(" ({})", log_safe(entry.mark));
  std::string out = fmt::format("{}  age {}  size {}  from <{}>{}\n", entry.id, format_age(now - entry.queued_at),
                                entry.bytes, log_safe(entry.sender), mark);
  for (const auto& r : entry.rcpts) {
    using State = ListedRecipient::State;
    std::string address = log_safe(r.address);
    switch (r.state) {
      case State::kDone: out += fmt::format("  done      <{}>\n", address); continue;
      case State::kQueued: out += fmt::format("  queued    <{}>\n", address); continue;
      case State::kDeferred: {
        std::string next = r.next_try <= now ? "now" : "in " + format_age(r.next_try - now);
        if (r.attempts == 0) out += fmt::format("  deferred  <{}>  waiting for a connection slot, next {}\n", address, next);
        else out += fmt::format("  deferred  <{}>  attempts {}  next {}\n", address, r.attempts, next);
        break;
      }
      case State::kFailed: out += fmt::format("  failed    <{}>  notice pending\n", address); break;
    }
    if (r.last.text.empty()) continue;
    if (r.last.from_remote) out += fmt::format("            last: {} said \"{}\"\n", r.last.host, r.last.text);
    else if (!r.last.host.empty()) out += fmt::format("            last: {}: {}\n", r.last.host, r.last.text);
    else out += fmt::format("            last: {}\n", r.last.text);
  }
  if (!entry.problem.empty()) out += fmt::format("  problem: {}\n", log_safe(entry.problem));
  return out;
}

std::string format_count(size_t count) {
  return fmt::format("{} message{} in the queue\n", count, count == 1 ? "" : "s");
}

int print_queue(const std::string& queue_dir, int out_fd, std::string_view program) {
  Log log{std::string(program)};
  auto entries = list_queue(queue_dir);
  if (!entries) {
    log.fatal("cannot read the queue: {}", entries.error().message());
    return 111;
  }
  time_t now = ::time(nullptr);
  std::string out;
  bool trouble = false;
  for (const auto& e : *entries) {
    out += format_entry(e, now);
    if (!e.problem.empty()) {
      log.warn("{}: {}", e.id, log_safe(e.problem));
      trouble = true;
    }
  }
  out += format_count(entries->size());
  if (Status s = write_all(out_fd, out); !s) {
    log.fatal("cannot write the listing: {}", s.message());
    return 111;
  }
  return trouble ? 111 : 0;
}

}  // namespace tikimail
