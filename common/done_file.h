// common/done_file.h: queue/done/<id>, deliver's per-recipient record (queue/README.md): one
// decimal recipient index a line, appended and synced as each recipient finishes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tikimail {

// The finished recipients of an entry with `rcpt_count` recipients: element i is true when
// index i is listed. A missing file means none finished. Only whole lines count: a line
// without its newline (torn by a crash), a line that is not a decimal number, or an index
// not below `rcpt_count` is ignored, so that recipient is delivered (again).
Result<std::vector<bool>> read_done(const std::string& path, size_t rcpt_count);
// The same rule applied to the text of such a file (mailq reads it without deliver's rights).
std::vector<bool> parse_done(std::string_view text, size_t rcpt_count);

// Appends "<index>\n" (O_APPEND|O_CREAT, mode 0640) and fdatasyncs it before returning: once
// this returns ok, a crash does not make the recipient unfinished again. When the file ends in
// a torn line, a newline goes first so that the new line stays whole.
Status append_done(const std::string& path, size_t index);
// The same for any record file of whole lines (queue/bounce/<id>): `line` ends in '\n'.
Status append_record(const std::string& path, std::string line);

}  // namespace tikimail
