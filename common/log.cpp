// common/log.cpp: the single-write log line.
#include "common/log.h"

#include <unistd.h>

#include "common/fd.h"

namespace tikimail {

void Log::emit(std::string_view level, std::string_view text) const {
  std::string line;
  line.reserve(program_.size() + level.size() + text.size() + 3);
  line.append(program_).append(": ").append(level).append(text).push_back('\n');
  (void)write_all(2, line);  // nowhere left to report a failing stderr
}

std::string log_safe(std::string_view s, size_t max) {
  std::string out;
  size_t n = s.size() < max ? s.size() : max;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (s.size() > max) out.append("...");
  return out;
}

}  // namespace tikimail
