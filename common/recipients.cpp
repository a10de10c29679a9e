// common/recipients.cpp: binary search over a sorted address list; rcpthosts matching.
#include "common/recipients.h"

#include <cerrno>
#include <cstring>

#include "common/address.h"
#include "common/control.h"
#include "common/fd.h"

namespace tikimail {

namespace {
constexpr size_t kMaxRecipientsFile = 256 * 1024 * 1024;

uint32_t offset_at(const std::string& index, size_t i) {
  uint32_t v;
  std::memcpy(&v, index.data() + i * 4, 4);
  return v;
}

std::string_view line_at(const std::string& text, uint32_t start) {
  size_t end = text.find('\n', start);
  if (end == std::string::npos) end = text.size();
  return std::string_view(text).substr(start, end - start);
}
}  // namespace

Result<Recipients> Recipients::load(const std::string& path) {
  Recipients r;
  auto text = read_file(path, kMaxRecipientsFile);
  if (!text) {
    if (text.error().errno_value() == ENOENT) return r;
    return text.error();
  }
  r.text_ = std::move(*text);
  size_t pos = 0;
  while (pos < r.text_.size()) {
    size_t end = r.text_.find('\n', pos);
    if (end == std::string::npos) end = r.text_.size();
    if (end > pos) {
      uint32_t off = static_cast<uint32_t>(pos);
      r.index_.append(reinterpret_cast<const char*>(&off), 4);
      ++r.count_;
    }
    pos = end + 1;
  }
  return r;
}

bool Recipients::contains(std::string_view address) const {
  std::string key = ascii_lower(address);
  size_t lo = 0, hi = count_;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = line_at(text_, offset_at(index_, mid)).compare(key);
    if (c == 0) return true;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return false;
}

Result<DomainList> DomainList::load(const std::string& path) {
  auto lines = read_control_lines(path);
  if (!lines) return lines.error();
  return from_lines(std::move(*lines));
}

DomainList DomainList::from_lines(std::vector<std::string> lines) {
  DomainList d;
  for (auto& l : lines) d.lines_.push_back(ascii_lower(l));
  return d;
}

bool DomainList::contains(std::string_view domain) const {
  std::string key = ascii_lower(domain);
  for (const auto& l : lines_) {
    if (l == key) return true;
    if (l.size() > 1 && l.front() == '.' && key.size() > l.size() && key.ends_with(l)) return true;
  }
  return false;
}

}  // namespace tikimail
