// smtpd/hop_count.h: counting the trace fields of a message as it streams in, so that mail
// that loops between hosts (or back to us) ends instead of circling (RFC 5321 6.3).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tikimail {

// A message with more Received: and Delivered-To: fields than this is refused (554 5.4.6).
inline constexpr size_t kMaxHops = 100;

class HopCount {
 public:
  // Feeds message bytes in LF form (as DataStream decodes them), in any pieces. Only the
  // header section counts: the first empty line ends it.
  void feed(std::string_view bytes);
  size_t hops() const { return hops_; }
  bool looping() const { return hops_ > kMaxHops; }

 private:
  bool in_header_ = true;
  bool at_line_start_ = true;
  std::string start_;  // the beginning of the current line, up to the longest name counted
  size_t hops_ = 0;
};

}  // namespace tikimail
