// common/address.h: RFC 5321 mailbox and path parsing with the section 4.5.3.1 length limits.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace tikimail {

inline constexpr size_t kMaxLocalPart = 64;   // RFC 5321 4.5.3.1.1
inline constexpr size_t kMaxDomain = 255;     // RFC 5321 4.5.3.1.2
inline constexpr size_t kMaxPath = 256;       // RFC 5321 4.5.3.1.3, with the angle brackets

struct Address {
  std::string local;     // unquoted: "a b" for "\"a b\"", "user%x" stays as is
  std::string domain;    // lowercase; "[192.0.2.1]" for a literal; empty for <> and <postmaster>
  bool literal = false;  // the domain is an address literal

  bool is_null() const { return local.empty() && domain.empty(); }
  // The envelope form, unquoted: "local@domain", "postmaster", or "" for <>.
  std::string str() const;
  // The SMTP form, quoting the local part where RFC 5321 needs it: "<\"a b\"@x.test>".
  std::string smtp() const;
};

enum class PathError { kSyntax, kTooLong };

struct ParsedPath {
  Address address;
  std::string_view params;  // what follows the path: "SIZE=123 BODY=8BITMIME", trimmed
};

struct PathResult {
  bool ok = false;
  PathError error = PathError::kSyntax;
  ParsedPath path;
};

// Parses the argument after "MAIL FROM:" or "RCPT TO:".
// - `<>` only when allow_null (MAIL).
// - `<postmaster>` without a domain only when allow_bare_postmaster (RCPT), any case.
// - A source route `<@a,@b:user@c>` is accepted and dropped (RFC 5321 C: the
//   mailbox after it is the destination).
// - Leniency kept from long practice: spaces before the path, and a path without
//   angle brackets when it holds no space.
// Rejected: trailing dots, empty labels, 8-bit bytes, unbalanced quotes or brackets.
PathResult parse_path(std::string_view arg, bool allow_null, bool allow_bare_postmaster);

// Parses a bare mailbox "local@domain" (no brackets, no source route), as found in
// control files, envelopes and command-line arguments.
PathResult parse_mailbox(std::string_view text);

// The SMTP form of an envelope address as queued (unquoted, Address::str()): split at its last
// '@' and quoted where RFC 5321 needs it, for headers that carry a path (Return-Path, the
// Received line's `for`): "a b@x.test" gives "<\"a b\"@x.test>", "" gives "<>".
std::string envelope_path(std::string_view envelope_address);

// True for domain syntax per RFC 5321 (letters, digits, hyphens; dot-separated labels).
bool valid_domain(std::string_view domain);

// Splits an envelope address at its last '@': {"user", "example.test"}; no '@' gives {addr, ""}.
std::pair<std::string_view, std::string_view> split_address(std::string_view addr);

std::string ascii_lower(std::string_view s);

}  // namespace tikimail
