// deliver/notice.h: who gets a notice about an entry (a bounce, a delay warning), and how it
// enters the queue: through the same chain as local injection (control/queuechain), with the
// envelope mark that keeps notices from looping (common/queue_proto.h).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/queue_proto.h"
#include "common/status.h"

namespace tikimail {

// What a child reads for notices, relative to the prefix, once per entry.
struct NoticeConfig {
  std::string me;              // control/me: Reporting-MTA and the notice's From
  std::string doublebounceto;  // control/doublebounceto, default "postmaster"
  size_t max_original = 100000;  // control/bouncemaxbytes: attach the whole original up to this

  static Result<NoticeConfig> load();
};

struct NoticeTarget {
  bool drop = false;   // no notice at all; `why` says why
  std::string why;
  Envelope envelope;   // the notice's envelope: null sender, the mark, one recipient
};

// For a failure notice (delay == false) or a delay warning about a message with envelope
// `original`:
//  - a notice about a double bounce (mark doublebounce) is never sent: dropped;
//  - a message with a sender gets its notice at that sender (mark bounce or delay);
//  - a message from the null sender (someone's bounce, or one of ours) is a double bounce:
//    to control/doublebounceto, mark doublebounce; no delay warning is sent for it.
NoticeTarget notice_target(const Envelope& original, const NoticeConfig& config, bool delay);

// Puts one notice into the queue. Ok when queued; a permanent error when the chain refused
// it for good; a temporary error otherwise (the notice is tried again later).
using Injector = std::function<Status(const Envelope& envelope, const std::string& message)>;

// The Injector of the service: runs control/queuechain (default bin/queue) with a fresh MSGID.
Status inject_via_chain(const Envelope& envelope, const std::string& message);

}  // namespace tikimail
