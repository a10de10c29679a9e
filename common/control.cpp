// common/control.cpp: reading control files and finding the prefix.
#include "common/control.h"

#include <sys/auxv.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "common/fd.h"

namespace tikimail {

static std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

Result<std::vector<std::string>> read_control_lines(const std::filesystem::path& path) {
  auto text = read_file(path.string(), kMaxControlFile);
  std::vector<std::string> lines;
  if (!text) {
    if (text.error().errno_value() == ENOENT) return lines;
    return text.error();
  }
  std::string_view rest = *text;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (!line.empty()) lines.emplace_back(line);
  }
  return lines;
}

Result<std::string> read_control_string(const std::filesystem::path& path, std::string fallback) {
  auto lines = read_control_lines(path);
  if (!lines) return lines.error();
  if (lines->empty()) return fallback;
  return std::move(lines->front());
}

Result<uint64_t> read_control_uint(const std::filesystem::path& path, uint64_t fallback) {
  auto text = read_control_string(path, "");
  if (!text) return text.error();
  if (text->empty()) return fallback;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size())
    return Status::temporary(fmt::format("{}: not a number: {}", path.string(), *text));
  return value;
}

Result<std::vector<std::string>> read_control_words(const std::filesystem::path& path,
                                                    std::vector<std::string> fallback) {
  auto lines = read_control_lines(path);
  if (!lines) return lines.error();
  std::vector<std::string> words;
  for (std::string_view line : *lines) {
    while (!line.empty()) {
      size_t start = line.find_first_not_of(" \t");
      if (start == std::string_view::npos) break;
      line.remove_prefix(start);
      size_t end = line.find_first_of(" \t");
      words.emplace_back(line.substr(0, end));
      line = end == std::string_view::npos ? std::string_view() : line.substr(end);
    }
  }
  if (words.empty()) return fallback;
  return words;
}

std::filesystem::path tikimail_home() {
  const char* env = std::getenv("TIKIMAIL_HOME");
  // Not in a process that gained privileges at exec (set-uid, set-gid, file capabilities:
  // the kernel's AT_SECURE): its caller would choose which files it opens with them.
  if (env != nullptr && *env != '\0' && ::getauxval(AT_SECURE) == 0 && ::getuid() == ::geteuid() &&
      ::getgid() == ::getegid())
    return env;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "/var/tikimail";
  return exe.parent_path().parent_path();
}

Status enter_home() {
  auto home = tikimail_home();
  if (::chdir(home.c_str()) != 0) return Status::from_errno("chdir " + home.string(), errno);
  return Status::ok();
}

std::string local_hostname() {
  auto me = read_control_string("control/me", "");
  if (me && !me->empty()) return *me;
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace tikimail
