// common/dsn.cpp: composing delivery status notifications (RFC 3464, RFC 6522).
#include "common/dsn.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include <fmt/format.h>

#include "common/datetime.h"
#include "common/fd.h"
#include "common/remote_result.h"

namespace tikimail {

namespace {

constexpr size_t kFoldWidth = 78;      // RFC 5322 2.1.1: lines SHOULD stay within 78
constexpr size_t kMaxWord = 900;       // a word cut below the 998-octet line limit (2.1.1)
constexpr size_t kQpWidth = 76;        // RFC 2045 6.7 (5): encoded lines at most 76
constexpr size_t kTextWidth = 72;      // the human-readable part wraps here
constexpr size_t kMaxIdInBoundary = 32;
// RFC 2046 5.1.1: a boundary of at most 70 bchars. "=_" cannot occur in quoted-printable
// text ('=' there is always followed by two hex digits or a line end), so the text part can
// never contain it; the other parts are checked.
constexpr std::string_view kBoundaryTag = "=_tikimail-dsn";
constexpr std::string_view kSeparator =
    "------------------------------------------------------------------------\n";

bool is_8bit(unsigned char c) { return c >= 0x80; }

// Text for one header line or one line of the text part: control bytes (CR, LF and TAB
// included) become spaces, 8-bit bytes '?'. Nothing in it can end a line.
std::string one_line(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) out.push_back(' ');
    else if (is_8bit(c)) out.push_back('?');
    else out.push_back(ch);
  }
  return out;
}

// An envelope address for "To: <...>", Final-Recipient and the text: control bytes are
// dropped (they cannot be part of an address and must never split a header), angle
// brackets too (they would end the bracketed form early), 8-bit bytes become '?'.
std::string clean_address(std::string_view s) {
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || c == '<' || c == '>') continue;
    out.push_back(is_8bit(c) ? '?' : ch);
  }
  return out;
}

// control/me as a domain for From, Message-ID and Reporting-MTA: letters, digits, '.', '-'.
std::string clean_domain(std::string_view s) {
  std::string out;
  for (char c : s)
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
        c == '-')
      out.push_back(c);
  return out.empty() ? "localhost" : out;
}

// The queue id as it may appear in a Message-ID and a boundary: letters and digits.
std::string clean_id(std::string_view s) {
  std::string out;
  for (char c : s)
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) out.push_back(c);
  if (out.size() > kMaxIdInBoundary) out.resize(kMaxIdInBoundary);
  return out.empty() ? "0" : out;
}

// Splits at runs of spaces; a word longer than `max_word` is cut into pieces.
std::vector<std::string_view> words(std::string_view s, size_t max_word) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == ' ') { ++i; continue; }
    size_t end = s.find(' ', i);
    if (end == std::string_view::npos) end = s.size();
    for (size_t p = i; p < end;) {
      size_t n = std::min(max_word, end - p);
      out.push_back(s.substr(p, n));
      p += n;
    }
    i = end;
  }
  return out;
}

// Columns on a terminal, roughly: ASCII one, any other character (our labels are Japanese,
// which is full width) two.
size_t columns(std::string_view s) {
  size_t n = 0;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) n += 1;
    else if (c >= 0xc0) n += 2;
  }
  return n;
}

// Appends `text` as lines of at most kTextWidth columns where its words allow: the first
// line starts with `first`, the others with `rest` (a hanging indent).
void wrap(std::string& out, std::string_view first, std::string_view text, std::string_view rest) {
  std::string line(first);
  size_t width = columns(line);
  bool empty = true;  // no word on `line` yet
  std::string clean = one_line(text);  // outlives the views words() returns
  for (std::string_view w : words(clean, SIZE_MAX)) {
    if (!empty && width + 1 + columns(w) > kTextWidth) {
      out += line;
      out += '\n';
      line = rest;
      width = columns(line);
      empty = true;
    }
    if (!empty) {
      line += ' ';
      ++width;
    }
    line += w;
    width += columns(w);
    empty = false;
  }
  out += line;
  out += '\n';
}

// Reads exactly the first `want` bytes of the file with pread from offset 0; a file that ends
// sooner is an error (the caller asks for no more than the original's length).
Result<std::string> read_original(int fd, size_t want) {
  std::string buf(want, '\0');
  if (Status s = pread_exact(fd, buf.data(), want, 0, want, "read original message"); !s) return s;
  return buf;
}

// CRLF and bare CR become LF: the notice holds no CR (a queued message may keep a bare CR
// that came through sendmail).
std::string lf_only(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\r') out.push_back(s[i]);
    else if (i + 1 >= s.size() || s[i + 1] != '\n') out.push_back('\n');
  }
  return out;
}

// The header section of an LF message: up to and including the line end before the first
// empty line; all of it when there is none.
std::string_view header_section(std::string_view message) {
  if (message.starts_with('\n')) return {};
  size_t end = message.find("\n\n");
  return end == std::string_view::npos ? message : message.substr(0, end + 1);
}

bool has_8bit(std::string_view s) {
  for (char c : s)
    if (is_8bit(static_cast<unsigned char>(c))) return true;
  return false;
}

// What part 3 carries.
struct Attachment {
  bool whole = true;      // message/rfc822, else text/rfc822-headers
  std::string content;    // LF lines, ends in "\n" unless empty
};

Result<Attachment> attachment(int fd, uint64_t length, size_t max) {
  // One byte past the cap tells "at most max" from "larger"; nothing past the original's end
  // (in a queue entry file the envelope follows it).
  uint64_t cap = max == SIZE_MAX ? max : uint64_t{max} + 1;
  auto raw = read_original(fd, static_cast<size_t>(std::min(length, cap)));
  if (!raw) return raw.error();
  Attachment a;
  a.whole = raw->size() <= max;
  if (a.whole) {
    a.content = lf_only(*raw);
  } else {
    raw->resize(max);
    std::string lf = lf_only(*raw);
    std::string_view headers = header_section(lf);
    // A header section reaching past the cap is cut after its last whole line in it.
    if (headers.size() == lf.size() && !headers.ends_with('\n')) {
      size_t nl = headers.rfind('\n');
      headers = nl == std::string_view::npos ? std::string_view() : headers.substr(0, nl + 1);
    }
    a.content = std::string(headers);
  }
  if (!a.content.empty() && !a.content.ends_with('\n')) a.content += '\n';
  return a;
}

std::string status_code(const DsnRecipient& r, DsnInput::Kind kind) {
  if (valid_status_code(r.status)) return r.status;
  return kind == DsnInput::Kind::kFailure ? "5.0.0" : "4.0.0";
}

// Part 2, RFC 3464 section 2: the per-message fields, then one block per recipient.
std::string delivery_status(const DsnInput& in, const std::string& mta) {
  std::string out = header_field("Reporting-MTA", "dns; " + mta);
  out += header_field("X-Tikimail-Queue-ID", in.queue_id);
  if (in.arrival != 0) out += header_field("Arrival-Date", rfc5322_date(in.arrival));
  bool failed = in.kind == DsnInput::Kind::kFailure;
  for (const DsnRecipient& r : in.rcpts) {
    out += '\n';
    out += header_field("Final-Recipient", "rfc822; " + clean_address(r.address));
    out += header_field("Action", failed ? "failed" : "delayed");
    out += header_field("Status", status_code(r, in.kind));
    std::string remote = remote_mta_name(one_line(r.remote_host));
    if (!remote.empty()) out += header_field("Remote-MTA", "dns; " + remote);
    if (r.from_remote && !r.text.empty()) out += header_field("Diagnostic-Code", "smtp; " + r.text);
    if (r.last_attempt != 0) out += header_field("Last-Attempt-Date", rfc5322_date(r.last_attempt));
    if (!failed && in.retry_until != 0)
      out += header_field("Will-Retry-Until", rfc5322_date(in.retry_until));
  }
  return out;
}

std::string sender_text(const DsnInput& in) {
  std::string sender = clean_address(in.original_sender);
  return sender.empty() ? "<> (the null sender)" : "<" + sender + ">";
}

// One recipient in the text part, with labels in the reader's language.
struct Labels {
  std::string_view status, server, replied, reason;
};
constexpr Labels kEnglish{"Status:", "Remote server:", "It replied:", "Reason:"};
constexpr Labels kJapanese{"状態コード:", "相手先サーバー:", "サーバーの応答:", "理由:"};

void recipient_text(std::string& out, const DsnRecipient& r, DsnInput::Kind kind, const Labels& l) {
  out += fmt::format("<{}>\n", clean_address(r.address));
  out += fmt::format("    {} {}\n", l.status, status_code(r, kind));
  std::string host = one_line(r.remote_host);
  if (!host.empty()) wrap(out, fmt::format("    {} ", l.server), host, "        ");
  if (!r.text.empty())
    wrap(out, fmt::format("    {} ", r.from_remote ? l.replied : l.reason), r.text, "        ");
}

// Part 1 before encoding: English, then Japanese, then the queue details.
std::string human_text(const DsnInput& in, const std::string& mta, const Attachment& a) {
  bool failed = in.kind == DsnInput::Kind::kFailure;
  std::string until = in.retry_until != 0 ? rfc5322_date(in.retry_until) : "";
  std::string out;

  out += fmt::format("This is the mail system at {}.\n\n", mta);
  if (failed) {
    wrap(out, "", "Your message could not be delivered to the recipients below. The problem is "
                  "permanent, so no further attempts will be made.", "");
  } else {
    wrap(out, "", "Your message has not been delivered yet to the recipients below. This is a "
                  "warning only: the message is still in our queue and we keep trying. You do "
                  "not need to send it again.", "");
  }
  for (const DsnRecipient& r : in.rcpts) {
    out += '\n';
    recipient_text(out, r, in.kind, kEnglish);
  }
  out += '\n';
  if (failed) {
    wrap(out, "", fmt::format("Please check that the addresses are spelled correctly, then send "
                              "the message again. If the problem persists, reach the recipient "
                              "another way, or ask the postmaster of {} for help.", mta), "");
  } else if (!until.empty()) {
    wrap(out, "", fmt::format("We will keep trying until {}. If the message cannot be delivered "
                              "by then, it will be returned to you with another notice.", until), "");
  } else {
    wrap(out, "", "We will keep trying for some time. If the message cannot be delivered, it "
                  "will be returned to you with another notice.", "");
  }
  out += '\n';
  if (a.whole) wrap(out, "", "The original message is attached.", "");
  else
    wrap(out, "", fmt::format("The original message was larger than {} bytes, so only its "
                              "headers are attached.", in.max_original), "");

  out += '\n';
  out += kSeparator;
  out += '\n';
  out += fmt::format("こちらは {} のメールシステムです。\n\n", mta);
  if (failed) {
    out += "お送りいただいたメールを、以下の宛先に配信できませんでした。\n";
    out += "恒久的なエラーのため、これ以上の配信は行いません。\n";
  } else {
    out += "お送りいただいたメールは、まだ以下の宛先に配信できていません。\n";
    out += "このメールはお知らせのみです。メールはこちらで保管し、配信を続けています。\n";
    out += "もう一度お送りいただく必要はありません。\n";
  }
  for (const DsnRecipient& r : in.rcpts) {
    out += '\n';
    recipient_text(out, r, in.kind, kJapanese);
  }
  out += '\n';
  if (failed) {
    out += "宛先のメールアドレスに誤りがないかご確認のうえ、もう一度お送りください。\n";
    out += "問題が解決しない場合は、別の方法で宛先の方にご連絡いただくか、\n";
    out += fmt::format("{} の管理者（postmaster）にお問い合わせください。\n", mta);
  } else if (!until.empty()) {
    out += fmt::format("{} まで配信を試みます。\n", until);
    out += "それまでに配信できなかった場合は、改めてお知らせし、メールをお返しします。\n";
  } else {
    out += "しばらくの間、配信を試みます。\n";
    out += "配信できなかった場合は、改めてお知らせし、メールをお返しします。\n";
  }
  out += '\n';
  if (a.whole) out += "元のメールを添付しています。\n";
  else
    out += fmt::format("元のメールは {} バイトを超えるため、ヘッダーのみを添付しています。\n",
                       in.max_original);

  out += '\n';
  out += kSeparator;
  out += '\n';
  out += fmt::format("Queue ID (キューID): {}\n", one_line(in.queue_id));
  if (in.arrival != 0) out += fmt::format("Arrival (受付日時): {}\n", rfc5322_date(in.arrival));
  out += fmt::format("Original sender (元の差出人): {}\n", sender_text(in));
  return out;
}

}  // namespace

std::string quoted_printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  size_t col = 0;
  std::string token;
  size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += '\n';
      col = 0;
      ++i;
      continue;
    }
    // A UTF-8 sequence is one token, so that no soft break splits a character.
    size_t len = 1;
    if (c >= 0xc0) {
      size_t expect = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
      while (len < expect && i + len < text.size() &&
             (static_cast<unsigned char>(text[i + len]) & 0xc0) == 0x80)
        ++len;
    }
    bool line_end = i + len == text.size() || text[i + len] == '\n';
    token.clear();
    for (size_t k = i; k < i + len; ++k) {
      auto b = static_cast<unsigned char>(text[k]);
      // RFC 2045 6.7 (2), (3): printable ASCII but '=' as is; a space or tab only where
      // text follows it on the line.
      bool literal = (b >= 33 && b <= 126 && b != '=') || ((b == ' ' || b == '\t') && !line_end);
      if (literal) {
        token += static_cast<char>(b);
      } else {
        token += '=';
        token += kHex[b >> 4];
        token += kHex[b & 0xf];
      }
    }
    // RFC 2045 6.7 (5): a line that goes on needs room for its soft break "=".
    size_t limit = line_end ? kQpWidth : kQpWidth - 1;
    if (col > 0 && col + token.size() > limit) {
      out += "=\n";
      col = 0;
    }
    out += token;
    col += token.size();
    i += len;
  }
  return out;
}

std::string header_field(std::string_view name, std::string_view value) {
  std::string out(name);
  out += ':';
  size_t col = out.size();
  bool first = true;
  std::string clean = one_line(value);  // outlives the views words() returns
  for (std::string_view w : words(clean, kMaxWord)) {
    // RFC 5322 2.2.3: fold by a line end before the space; the first word stays on the
    // name's line however long.
    if (!first && col + 1 + w.size() > kFoldWidth) {
      out += '\n';
      col = 0;
    }
    out += ' ';
    out += w;
    col += 1 + w.size();
    first = false;
  }
  out += '\n';
  return out;
}

std::string remote_mta_name(std::string_view host) {
  size_t bracket = host.find('[');
  if (bracket != std::string_view::npos) {
    if (bracket > 0) return std::string(host.substr(0, bracket));
    size_t close = host.find(']');
    if (close == std::string_view::npos) return std::string(host.substr(1));
    return std::string(host.substr(1, close - 1));
  }
  // "mx.example.net:25": the port goes; a bare IPv6 address (several colons) stays whole.
  size_t colon = host.find(':');
  if (colon != std::string_view::npos && host.find(':', colon + 1) == std::string_view::npos)
    return std::string(host.substr(0, colon));
  return std::string(host);
}

Result<std::string> compose_dsn(const DsnInput& in, int original_fd, uint64_t original_bytes, time_t now) {
  if (in.rcpts.empty()) return Status::permanent("delivery status notification without recipients");
  auto original = attachment(original_fd, original_bytes, in.max_original);
  if (!original) return original.error();
  bool failed = in.kind == DsnInput::Kind::kFailure;
  std::string mta = clean_domain(in.reporting_mta);
  std::string id = clean_id(in.queue_id);

  std::string text = quoted_printable(human_text(in, mta, *original));
  std::string report = delivery_status(in, mta);
  bool eight_bit = has_8bit(original->content);

  // RFC 2046 5.1.1: the boundary must occur in no part; `text` cannot hold it (kBoundaryTag).
  std::string boundary;
  for (unsigned n = 0;; ++n) {
    boundary = fmt::format("{}-{}-{}", kBoundaryTag, id, static_cast<int64_t>(now));
    if (n > 0) boundary += fmt::format("-{}", n);
    std::string delimiter = "--" + boundary;
    if (text.find(delimiter) == std::string::npos && report.find(delimiter) == std::string::npos &&
        original->content.find(delimiter) == std::string::npos)
      break;
  }

  std::string to = clean_address(in.to);
  std::string out;
  out += header_field("From", fmt::format("Mail Delivery System <MAILER-DAEMON@{}>", mta));
  out += header_field("To", to.empty() ? "undisclosed-recipients:;" : "<" + to + ">");
  out += header_field("Subject", failed ? kDsnSubjectFailure : kDsnSubjectDelay);
  out += header_field("Date", rfc5322_date(now));
  out += header_field("Message-ID", fmt::format("<{}.{}.dsn@{}>", id, static_cast<int64_t>(now), mta));
  out += "Auto-Submitted: auto-replied\n";  // RFC 3834 5: no auto-responder answers this
  out += "MIME-Version: 1.0\n";
  out += fmt::format("Content-Type: multipart/report; report-type=delivery-status;\n"
                     " boundary=\"{}\"\n", boundary);
  // RFC 2045 6.4: a multipart is labelled with the widest encoding of its parts.
  out += fmt::format("Content-Transfer-Encoding: {}\n", eight_bit ? "8bit" : "7bit");
  out += '\n';
  out += "This is a MIME-encapsulated delivery status notification.\n";

  // Each part's content ends in "\n" and is followed by an empty line: the line end before a
  // delimiter belongs to the delimiter (RFC 2046 5.1.1), so the content keeps its own.
  out += fmt::format("\n--{}\n", boundary);
  out += "Content-Type: text/plain; charset=UTF-8\n";
  out += "Content-Transfer-Encoding: quoted-printable\n";
  out += "Content-Description: Notification\n\n";
  out += text;

  out += fmt::format("\n--{}\n", boundary);
  out += "Content-Type: message/delivery-status\n";
  out += "Content-Description: Delivery report\n\n";
  out += report;

  out += fmt::format("\n--{}\n", boundary);
  if (original->whole) {
    out += "Content-Type: message/rfc822\n";
    out += fmt::format("Content-Description: {} message\n", failed ? "Undelivered" : "Delayed");
  } else {
    out += "Content-Type: text/rfc822-headers\n";
    out += fmt::format("Content-Description: Headers of the {} message\n",
                       failed ? "undelivered" : "delayed");
  }
  // RFC 2046 5.2.1: message/rfc822 takes no encoding but 7bit, 8bit or binary.
  out += fmt::format("Content-Transfer-Encoding: {}\n\n", eight_bit ? "8bit" : "7bit");
  out += original->content;
  out += fmt::format("\n--{}--\n", boundary);
  return out;
}

}  // namespace tikimail
