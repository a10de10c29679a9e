// relayctl/relay_db.cpp: the relay db on the filesystem: canonical IPs as file names, entries
// replaced atomically, the expiry field deciding (relayctl/README.md).
#include "relayctl/relay_db.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/control.h"
#include "common/fd.h"
#include "common/log.h"

namespace tikimail {

namespace {

// A login as stored: printable ASCII without spaces (the fields are space-separated).
bool valid_login(std::string_view login) {
  if (login.empty() || login.size() > kMaxRelayLogin) return false;
  return std::all_of(login.begin(), login.end(), [](char c) { return c > ' ' && c < 127; });
}

// Epoch seconds as format_relay_entry writes them: digits, no sign, no leading zero.
std::optional<time_t> parse_time(std::string_view s) {
  if (s.empty() || s.size() > 18 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  long long value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value < 0) return std::nullopt;
  return static_cast<time_t>(value);
}

// The order of list(): the family, then the address bytes (numeric order).
std::string sort_key(const std::string& ip) {
  unsigned char bytes[sizeof(in6_addr)] = {};
  if (::inet_pton(AF_INET, ip.c_str(), bytes) == 1) return "4" + std::string(reinterpret_cast<char*>(bytes), 4);
  (void)::inet_pton(AF_INET6, ip.c_str(), bytes);
  return "6" + std::string(reinterpret_cast<char*>(bytes), sizeof bytes);
}

// A name in the directory that is an entry: exactly the canonical form of an IP.
bool entry_name(const std::string& name) {
  auto canon = canonical_ip(name);
  return canon && *canon == name;
}

// A temporary name a writer (replace_file: "<ip>.tmp<pid>") or purge ("<ip>.purge<pid>")
// uses for a moment; a crash can leave one behind.
bool temp_name(std::string_view name) {
  for (std::string_view mark : {".tmp", ".purge"}) {
    size_t at = name.rfind(mark);
    if (at == std::string_view::npos || at == 0) continue;
    std::string_view pid = name.substr(at + mark.size());
    if (pid.empty() || !std::all_of(pid.begin(), pid.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    if (entry_name(std::string(name.substr(0, at)))) return true;
  }
  return false;
}

// The entry in `path` (named `ip`): nullopt when the file is missing or malformed.
Result<std::optional<RelayEntry>> read_entry(const std::string& path, std::string_view ip) {
  auto text = read_file(path, kMaxRelayEntry);
  if (!text) {
    if (text.error().errno_value() == ENOENT) return std::optional<RelayEntry>();
    if (text.error().permanent_failure()) return std::optional<RelayEntry>();  // too big: malformed
    return text.error();
  }
  return parse_relay_entry(ip, *text);
}

// Regular files only (not following symlinks): anything else under relay/ is not ours.
bool regular_file(const std::filesystem::directory_entry& entry) {
  std::error_code ec;
  return entry.symlink_status(ec).type() == std::filesystem::file_type::regular && !ec;
}

}  // namespace

std::optional<std::string> canonical_ip(std::string_view ip) {
  if (ip.empty() || ip.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  if (ip.find('\0') != std::string_view::npos) return std::nullopt;
  std::string text(ip);  // inet_pton wants a C string
  char out[INET6_ADDRSTRLEN] = {};
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    if (::inet_ntop(AF_INET, &v4, out, sizeof out) == nullptr) return std::nullopt;
    return std::string(out);
  }
  if (::inet_pton(AF_INET6, text.c_str(), &v6) != 1) return std::nullopt;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    // tcpserver on a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; a login over
    // IPv4 and an SMTP connection over the dual-stack socket must find the same entry.
    std::memcpy(&v4, &v6.s6_addr[12], sizeof v4);
    if (::inet_ntop(AF_INET, &v4, out, sizeof out) == nullptr) return std::nullopt;
    return std::string(out);
  }
  if (::inet_ntop(AF_INET6, &v6, out, sizeof out) == nullptr) return std::nullopt;
  return std::string(out);
}

Result<uint64_t> read_relay_window(const std::filesystem::path& path) {
  auto window = read_control_uint(path, kDefaultRelayWindow);
  if (!window) return window.error();
  if (*window > kMaxRelayWindow)
    return Status::temporary(fmt::format("{}: more than {} seconds: {}", path.string(), kMaxRelayWindow, *window));
  return *window;
}

std::string format_relay_entry(const RelayEntry& entry) {
  return fmt::format("{} {} {}\n", static_cast<long long>(entry.expiry), static_cast<long long>(entry.since),
                     entry.login.empty() ? "-" : entry.login);
}

std::optional<RelayEntry> parse_relay_entry(std::string_view ip, std::string_view text) {
  if (text.empty() || text.back() != '\n') return std::nullopt;
  text.remove_suffix(1);
  size_t sp1 = text.find(' ');
  if (sp1 == std::string_view::npos) return std::nullopt;
  size_t sp2 = text.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return std::nullopt;
  auto expiry = parse_time(text.substr(0, sp1));
  auto since = parse_time(text.substr(sp1 + 1, sp2 - sp1 - 1));
  std::string_view login = text.substr(sp2 + 1);
  if (!expiry || !since || !valid_login(login)) return std::nullopt;  // valid_login: no '\n' either
  return RelayEntry{std::string(ip), *expiry, *since, std::string(login)};
}

Status RelayDb::allow(std::string_view ip, std::string_view login, time_t now, time_t expiry) {
  auto canon = canonical_ip(ip);
  if (!canon) return Status::permanent(fmt::format("not an IP address: {}", log_safe(ip)));
  RelayEntry entry{*canon, expiry, now, login.empty() ? std::string("-") : std::string(login)};
  if (!valid_login(entry.login))
    return Status::permanent(fmt::format("bad login (printable, no spaces, at most {} bytes): {}", kMaxRelayLogin,
                                         log_safe(login)));
  if (now < 0 || expiry < 0) return Status::permanent("negative time");
  // replace_file: temp file beside the entry, fsync, rename over, fsync relay/. A reader sees
  // the old entry or the new one; after a crash the entry is there once we returned ok.
  return replace_file(path(*canon), format_relay_entry(entry), 0640);
}

Result<bool> RelayDb::check(std::string_view ip, time_t now) const {
  auto canon = canonical_ip(ip);
  if (!canon) return Status::permanent(fmt::format("not an IP address: {}", log_safe(ip)));
  auto entry = read_entry(path(*canon), *canon);
  if (!entry) return entry.error();
  return entry->has_value() && (*entry)->live(now);  // the expiry decides, never the mtime
}

Result<std::vector<RelayEntry>> RelayDb::list() const {
  std::vector<RelayEntry> entries;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir_, ec);
  if (ec == std::errc::no_such_file_or_directory) return entries;
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!entry_name(name) || !regular_file(*it)) continue;
    auto entry = read_entry(path(name), name);
    if (!entry) return entry.error();
    if (entry->has_value()) entries.push_back(std::move(**entry));
  }
  if (ec) return Status::temporary(fmt::format("read directory {}: {}", dir_, ec.message()));
  std::sort(entries.begin(), entries.end(),
            [](const RelayEntry& a, const RelayEntry& b) { return sort_key(a.ip) < sort_key(b.ip); });
  return entries;
}

Result<size_t> RelayDb::purge(time_t now) {
  size_t removed = 0;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir_, ec);
  if (ec == std::errc::no_such_file_or_directory) return removed;
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!regular_file(*it)) continue;
    std::string file = path(name);
    if (temp_name(name)) {
      struct stat st{};
      if (::lstat(file.c_str(), &st) == 0 && st.st_mtime <= now - kStaleTemp) ::unlink(file.c_str());
      continue;
    }
    if (!entry_name(name)) continue;
    auto entry = read_entry(file, name);
    if (!entry) return entry.error();
    if (entry->has_value() && (*entry)->live(now)) continue;
    // Take the file away under a name of our own, then look again: a login may have renewed
    // the entry since we read it, and the renewal must not be the one we delete.
    std::string taken = fmt::format("{}.purge{}", file, ::getpid());
    if (::rename(file.c_str(), taken.c_str()) != 0) {
      if (errno == ENOENT) continue;  // someone else removed it
      return Status::from_errno("rename " + file, errno);
    }
    auto again = read_entry(taken, name);
    if (!again || (again->has_value() && (*again)->live(now))) {
      // Renewed meanwhile (or unreadable now): put it back. link(2) never replaces, so an
      // even newer entry written since the rename wins; then ours goes.
      if (::link(taken.c_str(), file.c_str()) != 0 && errno != EEXIST) (void)::rename(taken.c_str(), file.c_str());
      ::unlink(taken.c_str());
      if (!again) return again.error();
      continue;
    }
    if (::unlink(taken.c_str()) != 0) return Status::from_errno("unlink " + taken, errno);
    ++removed;
  }
  // No fsync of relay/: an expired entry that comes back after a crash is still expired.
  if (ec) return Status::temporary(fmt::format("read directory {}: {}", dir_, ec.message()));
  return removed;
}

}  // namespace tikimail
