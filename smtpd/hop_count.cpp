// smtpd/hop_count.cpp: Received: and Delivered-To: lines of the header section.
#include "smtpd/hop_count.h"

#include "common/command.h"

namespace tikimail {

namespace {
constexpr std::string_view kReceived = "received:";
constexpr std::string_view kDeliveredTo = "delivered-to:";
constexpr size_t kLongestName = kDeliveredTo.size();
}  // namespace

void HopCount::feed(std::string_view bytes) {
  for (char c : bytes) {
    if (!in_header_) return;
    if (c == '\n') {
      if (at_line_start_) in_header_ = false;  // the empty line: the body starts
      at_line_start_ = true;
      start_.clear();
      continue;
    }
    if (start_.size() < kLongestName) {
      start_.push_back(c);
      if (start_.size() == kReceived.size() && equal_nocase(start_, kReceived)) ++hops_;
      if (start_.size() == kDeliveredTo.size() && equal_nocase(start_, kDeliveredTo)) ++hops_;
    }
    at_line_start_ = false;
  }
}

}  // namespace tikimail
