// relayctl/commands.h: the relayctl commands (allow, check, list, purge) against the relay db
// and control files in the current directory, the installation prefix (relayctl/README.md).
#pragma once

#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tikimail {

inline constexpr std::string_view kRelayctlUsage = "usage: relayctl allow IP [LOGIN] | check IP | list | purge";

// Paths relative to the prefix.
inline constexpr const char* kRelayDir = "relay";
inline constexpr const char* kRelayWindowPath = "control/relaywindow";

// Exit codes of the tool.
namespace relayctl_exit {
inline constexpr int kOk = 0;
inline constexpr int kNotAllowed = 1;  // check: the IP may not relay now
inline constexpr int kPermanent = 100; // usage, not an IP address, a bad login
inline constexpr int kTemporary = 111; // I/O, a bad control/relaywindow
}  // namespace relayctl_exit

enum class RelayVerb { kAllow, kCheck, kList, kPurge };

struct RelayRequest {
  RelayVerb verb = RelayVerb::kList;
  std::string ip;     // allow, check: canonical form (canonical_ip)
  std::string login;  // allow: as given, may be empty
};

// Parses the arguments after the program name. A wrong verb or argument count, or an IP
// that is not an IP address: a permanent error saying why.
Result<RelayRequest> parse_relay_request(const std::vector<std::string>& args);

// What a command produced: the exit code, the text for standard output, and one event for
// the log (stderr), empty when there is none.
struct RelayOutcome {
  int exit_code = relayctl_exit::kOk;
  std::string out;
  std::string event;
};

// Carries out the request at time `now`, relative to the current directory:
// - allow: writes relay/<ip> with expiry now + control/relaywindow; event
//   "allow ip=IP login=LOGIN expiry=EPOCH".
// - check: exit 0 when the IP has a live entry, 1 when not; no output.
// - list: one line per live entry, sorted by IP: "IP AGE LEFT LOGIN", AGE the seconds since
//   the login, LEFT the seconds until the expiry.
// - purge: removes expired and malformed entries; event "purge removed=N".
// Errors: permanent (a bad login), temporary (I/O, control/relaywindow).
Result<RelayOutcome> run_relay_request(const RelayRequest& request, time_t now);

// The tool exit code for a failure: 100 permanent, 111 temporary.
int relayctl_exit_code(const Status& status);

}  // namespace tikimail
