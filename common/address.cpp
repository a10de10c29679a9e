// common/address.cpp: a strict RFC 5321 path parser (section 4.1.2 grammar).
#include "common/address.h"

#include <arpa/inet.h>

namespace tikimail {

namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// RFC 5322 atext.
bool is_atext(char c) {
  if (is_alpha(c) || is_digit(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '/': case '=': case '?': case '^': case '_': case '`': case '{':
    case '|': case '}': case '~':
      return true;
    default:
      return false;
  }
}

// A cursor over the text being parsed.
struct Scanner {
  std::string_view s;
  size_t i = 0;
  bool done() const { return i >= s.size(); }
  char peek() const { return done() ? '\0' : s[i]; }
};

// Dot-string = Atom *("." Atom)
bool scan_dot_string(Scanner& sc, std::string* out) {
  size_t start = sc.i;
  for (;;) {
    size_t atom = sc.i;
    while (!sc.done() && is_atext(sc.peek())) ++sc.i;
    if (sc.i == atom) return false;  // empty atom: leading, trailing or double dot
    if (sc.peek() != '.') break;
    ++sc.i;
  }
  out->assign(sc.s.substr(start, sc.i - start));
  return true;
}

// Quoted-string = DQUOTE *QcontentSMTP DQUOTE; the content is returned unquoted.
bool scan_quoted_string(Scanner& sc, std::string* out) {
  if (sc.peek() != '"') return false;
  ++sc.i;
  out->clear();
  while (!sc.done()) {
    char c = sc.s[sc.i++];
    if (c == '"') return true;
    if (c == '\\') {
      if (sc.done()) return false;
      char q = sc.s[sc.i++];
      if (q < 32 || q > 126) return false;
      out->push_back(q);
      continue;
    }
    if (c < 32 || c > 126) return false;  // qtextSMTP: printable ASCII but " and backslash
    out->push_back(c);
  }
  return false;
}

// Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]
bool scan_domain(Scanner& sc, std::string* out) {
  size_t start = sc.i;
  for (;;) {
    size_t label = sc.i;
    while (!sc.done() && (is_alpha(sc.peek()) || is_digit(sc.peek()) || sc.peek() == '-')) ++sc.i;
    if (sc.i == label || sc.s[label] == '-' || sc.s[sc.i - 1] == '-') return false;
    if (sc.i - label > 63) return false;  // RFC 1035 label limit
    if (sc.peek() != '.') break;
    ++sc.i;
  }
  *out = ascii_lower(sc.s.substr(start, sc.i - start));
  return true;
}

// address-literal = "[" ( IPv4 / "IPv6:" IPv6 ) "]"
bool scan_literal(Scanner& sc, std::string* out) {
  if (sc.peek() != '[') return false;
  size_t close = sc.s.find(']', sc.i);
  if (close == std::string_view::npos) return false;
  std::string inner(sc.s.substr(sc.i + 1, close - sc.i - 1));
  unsigned char buf[16];
  bool ok = false;
  if (inner.size() > 5 && ascii_lower(inner.substr(0, 5)) == "ipv6:")
    ok = ::inet_pton(AF_INET6, inner.c_str() + 5, buf) == 1;
  else
    ok = ::inet_pton(AF_INET, inner.c_str(), buf) == 1;
  if (!ok) return false;
  *out = "[" + ascii_lower(inner) + "]";
  sc.i = close + 1;
  return true;
}

// Mailbox = Local-part "@" ( Domain / address-literal ), or a bare postmaster.
bool scan_mailbox(Scanner& sc, Address* addr, bool allow_bare_postmaster) {
  if (sc.peek() == '"') {
    if (!scan_quoted_string(sc, &addr->local)) return false;
  } else if (!scan_dot_string(sc, &addr->local)) {
    return false;
  }
  if (sc.peek() != '@') {
    if (!allow_bare_postmaster || ascii_lower(addr->local) != "postmaster") return false;
    addr->local = "postmaster";
    return true;
  }
  ++sc.i;
  if (sc.peek() == '[') {
    addr->literal = true;
    return scan_literal(sc, &addr->domain);
  }
  return scan_domain(sc, &addr->domain);
}

// A-d-l = At-domain *( "," At-domain ) ":"
bool skip_source_route(Scanner& sc) {
  for (;;) {
    if (sc.peek() != '@') return false;
    ++sc.i;
    std::string ignored;
    if (!scan_domain(sc, &ignored)) return false;
    if (sc.peek() == ',') {
      ++sc.i;
      continue;
    }
    if (sc.peek() != ':') return false;
    ++sc.i;
    return true;
  }
}

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

PathResult failed(PathError e) {
  PathResult r;
  r.error = e;
  return r;
}

bool lengths_ok(const Address& a) {
  return a.local.size() <= kMaxLocalPart && a.domain.size() <= kMaxDomain;
}

}  // namespace

std::string Address::str() const {
  if (domain.empty()) return local;
  return local + "@" + domain;
}

std::string Address::smtp() const {
  if (is_null()) return "<>";
  Scanner sc{local};
  std::string plain;
  bool dot_string = scan_dot_string(sc, &plain) && sc.done();
  std::string out = "<";
  if (dot_string) {
    out += local;
  } else {
    out += '"';
    for (char c : local) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  if (!domain.empty()) out += "@" + domain;
  return out + ">";
}

std::string envelope_path(std::string_view envelope_address) {
  auto [local, domain] = split_address(envelope_address);  // no '@': all of it is the local part
  Address a;
  a.local = std::string(local);
  a.domain = std::string(domain);
  return a.smtp();
}

PathResult parse_path(std::string_view arg, bool allow_null, bool allow_bare_postmaster) {
  arg = trim_spaces(arg);
  std::string_view path, params;
  if (!arg.empty() && arg.front() == '<') {
    // Find the closing bracket outside quotes.
    size_t i = 1;
    bool quoted = false;
    for (; i < arg.size(); ++i) {
      if (quoted && arg[i] == '\\') { ++i; continue; }
      if (arg[i] == '"') quoted = !quoted;
      else if (!quoted && arg[i] == '>') break;
    }
    if (i >= arg.size()) return failed(PathError::kSyntax);
    path = arg.substr(1, i - 1);
    params = arg.substr(i + 1);
    if (!params.empty() && params.front() != ' ') return failed(PathError::kSyntax);
    if (i + 1 > kMaxPath) return failed(PathError::kTooLong);
  } else {
    size_t sp = arg.find(' ');
    path = arg.substr(0, sp);
    if (path.empty()) return failed(PathError::kSyntax);  // "MAIL FROM:" alone is no path; <> is
    params = sp == std::string_view::npos ? std::string_view() : arg.substr(sp);
    if (path.size() + 2 > kMaxPath) return failed(PathError::kTooLong);
  }
  PathResult r;
  r.path.params = trim_spaces(params);
  if (path.empty()) {
    if (!allow_null) return failed(PathError::kSyntax);
    r.ok = true;
    return r;
  }
  Scanner sc{path};
  if (sc.peek() == '@' && !skip_source_route(sc)) return failed(PathError::kSyntax);
  if (!scan_mailbox(sc, &r.path.address, allow_bare_postmaster) || !sc.done())
    return failed(PathError::kSyntax);
  if (!lengths_ok(r.path.address)) return failed(PathError::kTooLong);
  r.ok = true;
  return r;
}

PathResult parse_mailbox(std::string_view text) {
  if (text.size() + 2 > kMaxPath) return failed(PathError::kTooLong);
  Scanner sc{text};
  PathResult r;
  if (!scan_mailbox(sc, &r.path.address, false) || !sc.done()) return failed(PathError::kSyntax);
  if (!lengths_ok(r.path.address)) return failed(PathError::kTooLong);
  r.ok = true;
  return r;
}

bool valid_domain(std::string_view domain) {
  Scanner sc{domain};
  std::string out;
  return domain.size() <= kMaxDomain && scan_domain(sc, &out) && sc.done();
}

std::pair<std::string_view, std::string_view> split_address(std::string_view addr) {
  size_t at = addr.rfind('@');
  if (at == std::string_view::npos) return {addr, {}};
  return {addr.substr(0, at), addr.substr(at + 1)};
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace tikimail
