// queue/headers.cpp: header section boundaries, fields, and the RFC 5322 address-list parser.
#include "queue/headers.h"

#include "common/address.h"

namespace tikimail {

bool is_field_line(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  for (char c : line.substr(0, colon))  // RFC 5322 2.2: ftext is %d33-57 / %d59-126
    if (c < 33 || c > 126) return false;
  return true;
}

bool HeaderEnd::scan(std::string_view text) {
  while (!done_) {
    size_t nl = text.find('\n', line_);
    if (nl == std::string_view::npos) return false;
    std::string_view line = text.substr(line_, nl - line_);
    bool continuation = line_ > 0 && !line.empty() && (line[0] == ' ' || line[0] == '\t');
    if (line.empty() || (!continuation && !is_field_line(line))) {
      done_ = true;
      header_bytes_ = line_;
      body_offset_ = line.empty() ? nl + 1 : line_;  // the empty line separates, nothing more
      break;
    }
    line_ = nl + 1;
  }
  return true;
}

void HeaderEnd::at_eof(std::string_view text) {
  if (scan(text)) return;
  done_ = true;
  header_bytes_ = body_offset_ = text.size();
}

std::string HeaderField::unfolded_value() const {
  std::string_view rest(text);
  size_t colon = rest.find(':');
  rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
  std::string out;
  out.reserve(rest.size());
  for (char c : rest)
    if (c != '\n' && c != '\r') out.push_back(c);  // RFC 5322 2.2.3: unfolding drops the CRLF
  return out;
}

bool HeaderField::is(std::string_view other) const { return ascii_lower(name) == ascii_lower(other); }

std::vector<HeaderField> split_fields(std::string_view section) {
  std::vector<HeaderField> fields;
  while (!section.empty()) {
    size_t nl = section.find('\n');
    size_t len = nl == std::string_view::npos ? section.size() : nl + 1;
    std::string_view line = section.substr(0, len);
    section.remove_prefix(len);
    if (!fields.empty() && (line[0] == ' ' || line[0] == '\t')) {
      fields.back().text.append(line);
      continue;
    }
    HeaderField f;
    f.name = std::string(line.substr(0, line.find(':')));
    f.text = std::string(line);
    fields.push_back(std::move(f));
  }
  return fields;
}

namespace {

enum class TokenKind { kWord, kQuoted, kLiteral, kSpecial };

struct Token {
  TokenKind kind;
  std::string text;  // as written: a quoted string with its quotes, a literal with brackets
  bool is(char special) const { return kind == TokenKind::kSpecial && text[0] == special; }
};

bool is_special(char c) {
  switch (c) {
    case '(': case ')': case '<': case '>': case '[': case ']': case ':': case ';': case '@':
    case '\\': case ',': case '.': case '"':
      return true;
    default:
      return false;
  }
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Splits an unfolded value into tokens, dropping CFWS (RFC 5322 3.2.2: nested comments
// with quoted-pairs). Bytes above 127 count as word characters (RFC 6532 display names);
// parse_mailbox() refuses them in addresses later.
Result<std::vector<Token>> tokenize(std::string_view s) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (is_space(c)) {
      ++i;
    } else if (c == '(') {
      int depth = 0;
      for (; i < s.size(); ++i) {
        if (s[i] == '\\') ++i;
        else if (s[i] == '(') ++depth;
        else if (s[i] == ')' && --depth == 0) break;
      }
      if (i >= s.size()) return Status::permanent("unterminated comment");
      ++i;
    } else if (c == '"' || c == '[') {
      char close = c == '"' ? '"' : ']';
      size_t start = i++;
      for (; i < s.size() && s[i] != close; ++i)
        if (s[i] == '\\') ++i;
      if (i >= s.size()) return Status::permanent(c == '"' ? "unterminated quoted string" : "unterminated domain literal");
      ++i;
      tokens.push_back({c == '"' ? TokenKind::kQuoted : TokenKind::kLiteral, std::string(s.substr(start, i - start))});
    } else if (is_special(c)) {
      if (c == ')' || c == ']' || c == '\\') return Status::permanent(fmt::format("unexpected '{}'", c));
      tokens.push_back({TokenKind::kSpecial, std::string(1, c)});
      ++i;
    } else if (static_cast<unsigned char>(c) < 32 || c == 127) {
      return Status::permanent("control character in address list");
    } else {
      size_t start = i;
      while (i < s.size() && !is_space(s[i]) && !is_special(s[i]) && static_cast<unsigned char>(s[i]) >= 32 && s[i] != 127) ++i;
      tokens.push_back({TokenKind::kWord, std::string(s.substr(start, i - start))});
    }
  }
  return tokens;
}

class ListParser {
 public:
  explicit ListParser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Status parse(std::vector<ListedAddress>* out) {
    if (Status s = list(false, out); !s) return s;
    if (!done()) return Status::permanent(fmt::format("unexpected '{}'", t_[i_].text));
    return Status::ok();
  }

 private:
  bool done() const { return i_ >= t_.size(); }
  bool at(char special) const { return !done() && t_[i_].is(special); }
  bool at_word() const { return !done() && (t_[i_].kind == TokenKind::kWord || t_[i_].kind == TokenKind::kQuoted); }

  // address-list, or a group's mailbox-list when in_group (ends before ';').
  Status list(bool in_group, std::vector<ListedAddress>* out) {
    while (!done() && !(in_group && at(';'))) {
      if (at(',')) {  // RFC 5322 4.4: obsolete empty list elements
        ++i_;
        continue;
      }
      if (Status s = address(in_group, out); !s) return s;
      if (at(',')) ++i_;
      else if (!done() && !(in_group && at(';')))
        return Status::permanent(fmt::format("unexpected '{}' after an address", t_[i_].text));
    }
    return Status::ok();
  }

  // Words and dots: a display name, or a local part when '@' or the end follows.
  std::vector<const Token*> words() {
    std::vector<const Token*> w;
    while (at_word() || at('.')) w.push_back(&t_[i_++]);
    return w;
  }

  // RFC 5322 3.4.1 local-part (dot-atom, quoted-string, obs-local-part): words joined by
  // dots; two words in a row are a phrase, not a local part.
  static Result<std::string> local_part(const std::vector<const Token*>& w) {
    if (w.empty()) return Status::permanent("missing address");
    std::string local;
    bool after_word = false;
    for (const Token* t : w) {
      bool word = t->kind != TokenKind::kSpecial;
      if (word && after_word) return Status::permanent(fmt::format("not an address: {} {}", local, t->text));
      local += t->text;
      after_word = word;
    }
    return local;
  }

  // domain = dot-atom / domain-literal (comments between the parts are already gone).
  Result<std::string> domain() {
    if (!done() && t_[i_].kind == TokenKind::kLiteral) return t_[i_++].text;
    std::string d;
    for (;;) {
      if (done() || t_[i_].kind != TokenKind::kWord) return Status::permanent("missing domain after '@'");
      d += t_[i_++].text;
      if (!at('.')) return d;
      d += '.';
      ++i_;
    }
  }

  // addr-spec, or a bare local name; appends it to *out.
  Status addr_spec(std::vector<const Token*> w, std::vector<ListedAddress>* out) {
    auto local = local_part(w);
    if (!local) return local.error();
    ListedAddress a;
    a.local = std::move(*local);
    if (at('@')) {
      ++i_;
      auto d = domain();
      if (!d) return d.error();
      a.domain = std::move(*d);
    }
    out->push_back(std::move(a));
    return Status::ok();
  }

  Status address(bool in_group, std::vector<ListedAddress>* out) {
    auto w = words();
    if (at('<')) {  // name-addr: [display-name] angle-addr
      ++i_;
      if (at('@')) {  // RFC 5322 4.4 obs-route "@a,@b:" is dropped
        while (!done() && !at(':') && !at('>')) ++i_;
        if (!at(':')) return Status::permanent("malformed route in angle brackets");
        ++i_;
      }
      if (at('>')) {  // "<>" names nobody
        ++i_;
        return Status::ok();
      }
      if (Status s = addr_spec(words(), out); !s) return s;
      if (!at('>')) return Status::permanent("missing '>'");
      ++i_;
      return Status::ok();
    }
    if (at(':') && !in_group) {  // group: display-name ":" [group-list] ";"
      if (w.empty()) return Status::permanent("group without a name");
      ++i_;
      if (Status s = list(true, out); !s) return s;
      if (at(';')) ++i_;  // a missing ';' at the very end is forgiven
      return Status::ok();
    }
    return addr_spec(std::move(w), out);
  }

  std::vector<Token> t_;
  size_t i_ = 0;
};

}  // namespace

Result<std::vector<ListedAddress>> parse_address_list(std::string_view value) {
  auto tokens = tokenize(value);
  if (!tokens) return tokens.error();
  std::vector<ListedAddress> out;
  ListParser parser(std::move(*tokens));
  if (Status s = parser.parse(&out); !s) return s;
  return out;
}

}  // namespace tikimail
