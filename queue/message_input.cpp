// queue/message_input.cpp: the byte-wise state machine behind MessageInput.
#include "queue/message_input.h"

namespace tikimail {

void MessageInput::flush_dot(std::string* out) {
  if (!pending_dot_) return;
  pending_dot_ = false;
  out->push_back('.');
  ++line_bytes_;
}

void MessageInput::put(char c, std::string* out) {
  flush_dot(out);
  out->push_back(c);
  ++line_bytes_;
}

void MessageInput::end_line(std::string* out) {
  if (pending_dot_ && line_bytes_ == 0 && dot_ends_) {
    pending_dot_ = false;
    ended_ = true;
    return;
  }
  flush_dot(out);
  out->push_back('\n');
  size_ += line_bytes_ + 2;  // RFC 1870: the line in its CRLF form
  line_bytes_ = 0;
}

void MessageInput::feed(std::string_view bytes, std::string* out) {
  for (char c : bytes) {
    if (ended_) return;
    if (pending_cr_) {
      pending_cr_ = false;
      if (c == '\n') {
        end_line(out);
        continue;
      }
      put('\r', out);  // a bare CR is text, kept as it came
    }
    if (c == '\r') {
      pending_cr_ = true;
    } else if (c == '\n') {
      end_line(out);
    } else if (c == '.' && dot_ends_ && line_bytes_ == 0 && !pending_dot_) {
      pending_dot_ = true;
    } else {
      put(c, out);
    }
  }
}

void MessageInput::finish(std::string* out) {
  if (ended_) return;
  if (pending_cr_) {  // a CR at EOF ends the last line like a CRLF would
    pending_cr_ = false;
    end_line(out);
    return;
  }
  if (line_bytes_ > 0 || pending_dot_) end_line(out);
}

}  // namespace tikimail
