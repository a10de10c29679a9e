// pop3d/login_policy.cpp: parsing control/pop3loginpolicy and deciding LOGIN-DELAY.
#include "pop3d/login_policy.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <string_view>

#include "common/control.h"
#include "common/fd.h"
#include "pop3d/mailbox.h"

namespace tikimail {

namespace {

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

std::optional<uint64_t> decimal(std::string_view digits) {
  if (digits.empty() || digits.size() > 19) return std::nullopt;
  uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

std::optional<uint64_t> size_with_suffix(std::string_view text) {
  uint64_t unit = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'K': case 'k': unit = 1024; break;
      case 'M': case 'm': unit = 1024 * 1024; break;
      case 'G': case 'g': unit = 1024 * 1024 * 1024; break;
      default: break;
    }
    if (unit != 1) text.remove_suffix(1);
  }
  auto value = decimal(text);
  if (!value || *value > UINT64_MAX / unit) return std::nullopt;
  return *value * unit;
}

}  // namespace

Result<LoginPolicy> LoginPolicy::parse(const std::vector<std::string>& lines) {
  LoginPolicy policy;
  size_t number = 0;
  for (const auto& line : lines) {
    ++number;
    auto bad = [&](std::string_view why) {
      return Status::temporary(fmt::format("pop3loginpolicy line {}: {}: {}", number, why, line));
    };
    auto f = fields(line);
    if (f.size() != 3) return bad("expected <plain|tls> <size> <seconds>");
    LoginRule rule;
    if (f[0] == "tls") rule.tls = true;
    else if (f[0] != "plain") return bad("kind must be plain or tls");
    auto size = size_with_suffix(f[1]);
    if (!size) return bad("bad size");
    auto interval = decimal(f[2]);
    if (!interval) return bad("bad interval");
    rule.min_bytes = *size;
    rule.interval = *interval;
    policy.rules_.push_back(rule);
  }
  return policy;
}

Result<LoginPolicy> LoginPolicy::load(const std::filesystem::path& path) {
  auto lines = read_control_lines(path);
  if (!lines) return lines.error();
  return parse(*lines);
}

uint64_t LoginPolicy::interval(bool tls, uint64_t mailbox_bytes) const {
  const LoginRule* best = nullptr;
  for (const auto& rule : rules_) {
    if (rule.tls != tls || rule.min_bytes > mailbox_bytes) continue;
    if (best == nullptr || rule.min_bytes >= best->min_bytes) best = &rule;  // a later equal line wins
  }
  return best == nullptr ? 0 : best->interval;
}

uint64_t login_wait(uint64_t interval, std::optional<time_t> last_login, time_t now) {
  if (interval == 0 || !last_login || *last_login > now + kLoginClockSlack) return 0;
  // A record slightly ahead of `now` is a fresh one: file times can be finer than time(2),
  // and a Maildir on NFS gets the server's clock.
  uint64_t elapsed = *last_login > now ? 0 : static_cast<uint64_t>(now - *last_login);
  return elapsed >= interval ? 0 : interval - elapsed;
}

Result<std::optional<time_t>> read_last_login(const std::string& maildir) {
  std::string path = maildir + "/" + std::string(kLastLoginFile);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<time_t>();
    return Status::from_errno("stat " + path, errno);
  }
  return std::optional<time_t>(st.st_mtime);
}

Status touch_last_login(const std::string& maildir) {
  std::string path = maildir + "/" + std::string(kLastLoginFile);
  auto fd = open_file(path, O_WRONLY | O_CREAT, 0600);
  if (!fd) return fd.error();
  if (::futimens(fd->get(), nullptr) != 0) return Status::from_errno("touch " + path, errno);
  return fd->close();
}

}  // namespace tikimail
