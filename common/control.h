// common/control.h: control files. Plain text, one value or one rule a line, `#` starts a
// comment, blank lines are ignored, and a missing file means the documented default.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace tikimail {

// Control files are at most this big; a bigger one is a configuration error.
inline constexpr size_t kMaxControlFile = 4 * 1024 * 1024;

// The meaningful lines of a control file: comments stripped, whitespace trimmed,
// empty lines dropped. A missing file gives an empty list; any other failure an error.
Result<std::vector<std::string>> read_control_lines(const std::filesystem::path& path);
// The first meaningful line, or `fallback` when the file is missing or empty.
Result<std::string> read_control_string(const std::filesystem::path& path, std::string fallback);
// The first line as an unsigned number; a malformed number is an error (not the default).
Result<uint64_t> read_control_uint(const std::filesystem::path& path, uint64_t fallback);

// Every whitespace-separated word of every meaningful line (control/queuechain), or
// `fallback` when there is none.
Result<std::vector<std::string>> read_control_words(const std::filesystem::path& path,
                                                    std::vector<std::string> fallback);

// The installation prefix (DESIGN section 5): $TIKIMAIL_HOME when set and the process did not
// gain privileges at exec (set-uid, set-gid, a file capability), else the parent of the
// directory holding the running binary.
std::filesystem::path tikimail_home();
// chdir to the prefix so that every path is relative to it ("control/me", "queue/todo").
Status enter_home();

// The host's name for greetings and Received lines: control/me, else gethostname().
std::string local_hostname();

}  // namespace tikimail
