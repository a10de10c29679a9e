// relayctl/relay_db.h: the POP-before-SMTP relay db (seed S4, DESIGN section 3): one file per
// client IP under relay/, its expiry deciding whether the IP may relay (relayctl/README.md).
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tikimail {

inline constexpr uint64_t kDefaultRelayWindow = 1200;       // seconds (seed S4: 20 minutes)
inline constexpr uint64_t kMaxRelayWindow = 366 * 86400;    // a larger window is a config error
inline constexpr size_t kMaxRelayLogin = 255;               // bytes of the login kept in an entry
inline constexpr size_t kMaxRelayEntry = 512;               // a bigger entry file is malformed

// The one spelling of an IP address the db uses as a file name: inet_pton then inet_ntop,
// and an IPv4-mapped IPv6 address ("::ffff:192.0.2.1") in its IPv4 form ("192.0.2.1").
// nullopt for anything that is not exactly one IPv4 or IPv6 address (names, CIDR, zone ids
// "%eth0", brackets, surrounding spaces, NUL). The result never contains '/' and is never
// "" "." or "..", so it is always one safe path component.
std::optional<std::string> canonical_ip(std::string_view ip);

// control/relaywindow: seconds an IP may relay after a login or `relayctl allow`.
// A missing file gives kDefaultRelayWindow; a malformed number or one above kMaxRelayWindow
// is a temporary error (an administrator fixes it; the caller retries).
Result<uint64_t> read_relay_window(const std::filesystem::path& path = "control/relaywindow");

// One entry as stored: `<expiry> <since> <login>\n` in relay/<ip>.
struct RelayEntry {
  std::string ip;        // canonical (the file name)
  time_t expiry = 0;     // epoch seconds; the entry is live while expiry > now
  time_t since = 0;      // epoch seconds of the login (or of `relayctl allow`)
  std::string login;     // the account, or "-" when none was given

  bool live(time_t now) const { return expiry > now; }
  bool operator==(const RelayEntry&) const = default;
};

// The text of an entry file, and its parser. parse_relay_entry gives nullopt for anything
// format_relay_entry cannot produce (a malformed entry is no entry).
std::string format_relay_entry(const RelayEntry& entry);
std::optional<RelayEntry> parse_relay_entry(std::string_view ip, std::string_view text);

// The store in one directory ("relay" relative to the prefix). Readers (smtpd) need only
// read access; writers (checkpassword as root, relayctl) write entries atomically, so a
// reader sees an old entry or a new one whole, never part of one.
class RelayDb {
 public:
  explicit RelayDb(std::string dir) : dir_(std::move(dir)) {}

  // Writes relay/<canonical ip> with mode 0640: temp file in the directory, fsync, rename,
  // fsync the directory (common/fd.h replace_file), so the entry survives a crash once this
  // returns ok. An existing entry is replaced whatever its expiry. `login` may be empty
  // (stored as "-"); it must be printable ASCII without spaces, at most kMaxRelayLogin.
  // Permanent error: not an IP address, a bad login. Temporary: I/O.
  Status allow(std::string_view ip, std::string_view login, time_t now, time_t expiry);

  // True when `ip` has a live entry (expiry > now). A missing entry, a missing directory,
  // or a malformed entry: false. Permanent error: not an IP address. Temporary: I/O
  // (the caller must not open the relay on an error).
  Result<bool> check(std::string_view ip, time_t now) const;

  // Every well-formed entry, live or expired, sorted by address (IPv4 before IPv6, each
  // numerically). Files whose name is not a canonical IP and malformed entries are skipped.
  // A missing directory is an empty list. Temporary error: the directory cannot be read.
  Result<std::vector<RelayEntry>> list() const;

  // Removes the entries that are not live at `now` and the malformed ones, and returns how
  // many it removed. An entry a writer renews while purge looks at it is kept. Temporary
  // files a crashed writer left behind are removed once they are kStaleTemp old (not
  // counted). Other names are left alone. Temporary error: I/O.
  Result<size_t> purge(time_t now);

  static constexpr time_t kStaleTemp = 600;  // seconds

 private:
  std::string path(std::string_view ip) const { return dir_ + "/" + std::string(ip); }
  std::string dir_;
};

}  // namespace tikimail
