// smtpd/data_stream.cpp: a byte-at-a-time state machine; bounded memory for any line length.
#include "smtpd/data_stream.h"

namespace tikimail {

void DataStream::end_line(std::string* out, bool crlf) {
  out->push_back('\n');
  size_ += 2;
  previous_crlf_ = crlf;
  state_ = State::kLineStart;
}

size_t DataStream::feed(std::string_view in, std::string* out) {
  size_t i = 0;
  while (i < in.size() && state_ != State::kDone) {
    char c = in[i];
    switch (state_) {
      case State::kLineStart:
        if (c == '.') {
          state_ = State::kDot;
          ++i;
        } else {
          state_ = State::kMiddle;  // same byte again, as the middle of a line
        }
        break;
      case State::kDot:  // a line that began with '.'; that dot is gone
        if (c == '\r') {
          state_ = State::kDotCr;
          ++i;
        } else if (c == '\n') {  // ".<LF>": not the end, an empty line
          end_line(out, false);
          ++i;
        } else {
          state_ = State::kMiddle;
        }
        break;
      case State::kDotCr:
        if (c == '\n') {
          ++i;
          if (previous_crlf_) {  // <CRLF>.<CRLF>: the end of data
            state_ = State::kDone;
          } else {  // "<LF>.<CRLF>": an empty line, not the end
            end_line(out, true);
          }
        } else {  // ".<CR>x": the bare CR ends the (empty) line; x starts the next
          end_line(out, false);
        }
        break;
      case State::kMiddle:
        if (c == '\r') {
          state_ = State::kMiddleCr;
        } else if (c == '\n') {
          end_line(out, false);
        } else {
          out->push_back(c);
          ++size_;
        }
        ++i;
        break;
      case State::kMiddleCr:
        if (c == '\n') {
          end_line(out, true);
          ++i;
        } else {  // bare CR: ends the line; c is looked at again as a line start
          end_line(out, false);
        }
        break;
      case State::kDone:
        break;
    }
  }
  return i;
}

}  // namespace tikimail
