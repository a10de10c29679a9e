// common/remote_result.cpp: the result lines between deliver-remote and deliver.
#include "common/remote_result.h"

#include <fmt/format.h>

#include <algorithm>

namespace tikimail {

namespace {

bool digits(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::string class_default(RemoteResult::Kind kind) {
  switch (kind) {
    case RemoteResult::Kind::kDelivered: return "2.0.0";
    case RemoteResult::Kind::kPermanent: return "5.0.0";
    case RemoteResult::Kind::kTemporary: break;
  }
  return "4.0.0";
}

bool valid_host(std::string_view host) {
  if (host.empty() || host.size() > 300) return false;
  for (char c : host)
    if (c <= ' ' || c > '~') return false;
  return true;
}

}  // namespace

bool valid_status_code(std::string_view status) {
  if (status.size() < 5 || (status[0] != '2' && status[0] != '4' && status[0] != '5') || status[1] != '.')
    return false;
  std::string_view rest = status.substr(2);
  size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return false;
  return digits(rest.substr(0, dot), 3) && digits(rest.substr(dot + 1), 3);
}

std::string printable(std::string_view text, size_t max) {
  std::string out;
  out.reserve(std::min(text.size(), max));
  for (char c : text) {
    if (out.size() >= max) break;
    if (c == '\r' || c == '\n' || c == '\t') out.push_back(' ');
    else if (c < ' ' || c > '~') out.push_back('?');
    else out.push_back(c);
  }
  return out;
}

RemoteResult own_result(RemoteResult::Kind kind, std::string status, std::string_view text) {
  RemoteResult r;
  r.kind = kind;
  r.status = std::move(status);
  r.text = printable(text);
  return r;
}

std::string encode_result(const RemoteResult& r) {
  std::string status = r.status;
  if (!valid_status_code(status)) status = class_default(r.kind);
  std::string host = valid_host(r.host) ? r.host : "-";
  return fmt::format("{} {} {} {} {}\n", static_cast<char>(r.kind), status, host, r.from_remote ? 'r' : 'l',
                     printable(r.text));
}

Result<std::vector<RemoteResult>> decode_results(std::string_view output, size_t count) {
  std::vector<RemoteResult> results;
  while (!output.empty()) {
    size_t nl = output.find('\n');
    if (nl == std::string_view::npos) return Status::temporary("deliver-remote: unterminated result line");
    std::string_view line = output.substr(0, nl);
    output.remove_prefix(nl + 1);
    if (results.size() == count) return Status::temporary("deliver-remote: more result lines than recipients");
    // <kind> <status> <host> <source> <text>: four fields separated by single spaces, then the text.
    std::string_view fields[4];
    for (auto& f : fields) {
      size_t sp = line.find(' ');
      if (sp == std::string_view::npos) return Status::temporary("deliver-remote: malformed result line");
      f = line.substr(0, sp);
      line.remove_prefix(sp + 1);
    }
    RemoteResult r;
    if (fields[0] == "K") r.kind = RemoteResult::Kind::kDelivered;
    else if (fields[0] == "Z") r.kind = RemoteResult::Kind::kTemporary;
    else if (fields[0] == "D") r.kind = RemoteResult::Kind::kPermanent;
    else return Status::temporary("deliver-remote: bad result kind");
    if (!valid_status_code(fields[1]) || fields[1][0] != class_default(r.kind)[0])
      return Status::temporary("deliver-remote: bad status code");
    r.status = std::string(fields[1]);
    if (fields[2] != "-") {
      if (!valid_host(fields[2])) return Status::temporary("deliver-remote: bad host");
      r.host = std::string(fields[2]);
    }
    if (fields[3] == "r") r.from_remote = true;
    else if (fields[3] != "l") return Status::temporary("deliver-remote: bad result source");
    r.text = printable(line);
    results.push_back(std::move(r));
  }
  if (results.size() != count)
    return Status::temporary(fmt::format("deliver-remote: {} result lines for {} recipients", results.size(), count));
  return results;
}

}  // namespace tikimail
