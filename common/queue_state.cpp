// common/queue_state.cpp: queue/info/<id> and queue/bounce/<id>.
#include "common/queue_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fmt/format.h>

#include "common/done_file.h"
#include "common/fd.h"

namespace tikimail {

namespace {

constexpr size_t kMaxStateFile = 16 * 1024 * 1024;

// Takes one decimal number and the space after it off the front of `line`.
template <typename T>
bool take_number(std::string_view* line, T* out) {
  size_t sp = line->find(' ');
  if (sp == std::string_view::npos || sp == 0) return false;
  auto [end, ec] = std::from_chars(line->data(), line->data() + sp, *out);
  if (ec != std::errc() || end != line->data() + sp) return false;
  line->remove_prefix(sp + 1);
  return true;
}

// Calls fn(line) for each whole line of `text`.
template <typename Fn>
void each_line(std::string_view text, Fn fn) {
  for (size_t nl = text.find('\n'); nl != std::string_view::npos; nl = text.find('\n')) {
    fn(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
}

// One result line (without its newline) decoded, or false.
bool decode_one(std::string_view line, RemoteResult* out) {
  auto decoded = decode_results(std::string(line) + "\n", 1);
  if (!decoded) return false;
  *out = std::move(decoded->front());
  return true;
}

Result<std::string> read_optional(const std::string& path) {
  auto text = read_file(path, kMaxStateFile);
  if (!text && text.error().errno_value() == ENOENT) return std::string();
  return text;
}

}  // namespace

std::string format_entry_info(const EntryInfo& info) {
  std::string out;
  if (info.warned != 0) out += fmt::format("W {}\n", static_cast<long long>(info.warned));
  for (const auto& [index, st] : info.rcpts)
    out += fmt::format("{} {} {} {} {} ", index, st.attempts, static_cast<long long>(st.first_failure),
                       static_cast<long long>(st.last_try), static_cast<long long>(st.next_try)) +
           encode_result(st.last);
  return out;
}

EntryInfo parse_entry_info(std::string_view text, size_t rcpt_count) {
  EntryInfo info;
  each_line(text, [&](std::string_view line) {
    if (line.starts_with("W ")) {
      long long warned = 0;
      std::string_view rest = line.substr(2);
      auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), warned);
      if (ec == std::errc() && end == rest.data() + rest.size() && warned > 0) info.warned = warned;
      return;
    }
    size_t index = 0;
    RecipientState st;
    long long first = 0, last = 0, next = 0;
    if (!take_number(&line, &index) || !take_number(&line, &st.attempts) || !take_number(&line, &first) ||
        !take_number(&line, &last) || !take_number(&line, &next) || index >= rcpt_count ||
        !decode_one(line, &st.last))
      return;
    st.first_failure = first;
    st.last_try = last;
    st.next_try = next;
    info.rcpts[index] = std::move(st);
  });
  return info;
}

Result<EntryInfo> read_entry_info(const std::string& path, size_t rcpt_count) {
  auto text = read_optional(path);
  if (!text) return text.error();
  return parse_entry_info(*text, rcpt_count);
}

Status write_entry_info(const std::string& path, const EntryInfo& info) {
  if (info.rcpts.empty() && info.warned == 0) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Status::from_errno("unlink " + path, errno);
    return Status::ok();
  }
  std::string tmp = path + ".tmp";
  auto fd = open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
  if (!fd) return fd.error();
  if (Status s = write_all(fd->get(), format_entry_info(info)); !s) return Status::temporary(tmp + ": " + s.message());
  if (Status s = fd->close(); !s) return s;
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::from_errno("rename " + tmp, errno);
  return Status::ok();
}

std::vector<BounceRecord> parse_bounce_records(std::string_view text, size_t rcpt_count) {
  std::map<size_t, RemoteResult> latest;
  each_line(text, [&](std::string_view line) {
    size_t index = 0;
    RemoteResult r;
    if (!take_number(&line, &index) || index >= rcpt_count || !decode_one(line, &r)) return;
    if (r.kind == RemoteResult::Kind::kDelivered) return;
    latest[index] = std::move(r);
  });
  std::vector<BounceRecord> records;
  for (auto& [index, r] : latest) records.push_back({index, std::move(r)});
  return records;
}

Result<std::vector<BounceRecord>> read_bounce_records(const std::string& path, size_t rcpt_count) {
  auto text = read_optional(path);
  if (!text) return text.error();
  return parse_bounce_records(*text, rcpt_count);
}

Status append_bounce_record(const std::string& path, size_t index, const RemoteResult& result) {
  return append_record(path, fmt::format("{} ", index) + encode_result(result));
}

}  // namespace tikimail
