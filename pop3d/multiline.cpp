// pop3d/multiline.cpp: CRLF conversion, byte-stuffing and the TOP cut, one run of a line at a time.
#include "pop3d/multiline.h"

namespace tikimail {

void MultilineEncoder::feed(std::string_view bytes, std::string& out) {
  while (!bytes.empty() && !done_) {
    if (line_start_) {
      if (body_left_ && !in_header_ && *body_left_ == 0) {
        done_ = true;
        return;
      }
      // RFC 1939 section 3: a line beginning with the termination octet gets one more.
      if (bytes.front() == '.') out.push_back('.');
      line_start_ = false;
    }
    size_t lf = bytes.find('\n');
    std::string_view run = bytes.substr(0, lf);
    if (!run.empty()) {
      out.append(run);
      prev_cr_ = run.back() == '\r';
      line_bytes_ += run.size();
    }
    if (lf == std::string_view::npos) return;
    if (!prev_cr_) out.push_back('\r');
    out.push_back('\n');
    bool blank = line_bytes_ == 0 || (line_bytes_ == 1 && prev_cr_);
    if (in_header_) {
      if (blank) in_header_ = false;  // RFC 5322: the first empty line ends the header
    } else if (body_left_) {
      --*body_left_;
    }
    line_start_ = true;
    prev_cr_ = false;
    line_bytes_ = 0;
    bytes.remove_prefix(lf + 1);
  }
}

void MultilineEncoder::finish(std::string& out) {
  // A file without a final LF: end its last line, so that the terminator is a line.
  if (!line_start_ && !done_) out.append(prev_cr_ ? "\n" : "\r\n");
  out.append(".\r\n");
}

}  // namespace tikimail
