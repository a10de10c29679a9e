// deliver/local.h: which recipients are ours and where their mail goes: rcpthosts decides
// local or remote, postmaster is mapped, users/recipients must list the address, and only
// a safe local part ever becomes a path (mail/<domain>/<local>/Maildir).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/maildir.h"
#include "common/recipients.h"
#include "common/status.h"

namespace tikimail {

// What a child reads, relative to the prefix, once per entry (so a change needs no restart).
struct LocalConfig {
  DomainList rcpthosts;     // control/rcpthosts
  Recipients recipients;    // users/recipients
  std::string postmaster;   // control/postmaster, lowercase; empty when the file is missing

  static Result<LocalConfig> load();
};

struct Route {
  enum class Kind {
    kLocal,      // deliver into `maildir`
    kRemote,     // not one of our domains: deferred until remote delivery exists
    kFailed,     // permanent failure: `reason`
    kDeferred,   // temporary failure: `reason`
  };
  Kind kind = Kind::kFailed;
  std::string address;   // the final address, lowercase (after postmaster mapping)
  std::string maildir;   // kLocal: "mail/<domain>/<local>/Maildir"
  std::string reason;    // kFailed, kDeferred: for the log line
};

// Classifies one envelope recipient. Pure: looks at no file.
//  - lowercased; a domain not in rcpthosts is kRemote;
//  - `postmaster` without a domain, or postmaster@<a rcpthosts domain> (any case), becomes
//    control/postmaster (kDeferred when that file is missing), which is classified in turn;
//  - a local address not in users/recipients is kFailed ("no such user");
//  - a local part outside [a-z0-9._+-]+ or starting with '.', or a domain that is not plain
//    domain syntax, is kFailed: no path is built from it.
Route route_rcpt(std::string_view rcpt, const LocalConfig& config);

// True for a local part that may become a directory name: [a-z0-9._+-]+, not starting with '.'.
bool safe_local_part(std::string_view local);

// The header prefix deliver writes before the message: "Return-Path: <sender>\n"
// "Delivered-To: <rcpt>\n" (CR and LF dropped from both, so no header can be injected).
std::string delivery_header(std::string_view sender, std::string_view rcpt);

// Delivers the first `message_bytes` bytes of `message_fd` (the queue entry file, whose
// envelope and trailer follow the message) into route.maildir (which must be kLocal). A
// missing Maildir is a temporary failure: mailpasswd creates it when it adds the account.
Result<MaildirFile> deliver_local(const Route& route, std::string_view sender, int message_fd,
                                  uint64_t message_bytes, MaildirWriter& writer);

}  // namespace tikimail
