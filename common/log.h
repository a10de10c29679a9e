// common/log.h: one line per event on stderr, `program: <msgid> event key=value...`; the
// supervisor's logger (svlogd, multilog) adds the timestamp.
#pragma once

#include <string>
#include <string_view>

#include <fmt/format.h>

namespace tikimail {

class Log {
 public:
  explicit Log(std::string program) : program_(std::move(program)) {}

  template <typename... Args>
  void info(fmt::format_string<Args...> f, Args&&... args) const {
    emit("", fmt::format(f, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void warn(fmt::format_string<Args...> f, Args&&... args) const {
    emit("warning: ", fmt::format(f, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void fatal(fmt::format_string<Args...> f, Args&&... args) const {
    emit("fatal: ", fmt::format(f, std::forward<Args>(args)...));
  }
  const std::string& program() const { return program_; }

 private:
  // One write(2) per line so that concurrent writers never interleave within a line.
  void emit(std::string_view level, std::string_view text) const;
  std::string program_;
};

// Makes a client-supplied string safe for one log line: control bytes and
// non-ASCII become `?`, and it is cut at `max` bytes.
std::string log_safe(std::string_view s, size_t max = 200);

}  // namespace tikimail
