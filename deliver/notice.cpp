// deliver/notice.cpp: notice recipients and injection.
#include "deliver/notice.h"

#include "common/address.h"
#include "common/control.h"

namespace tikimail {

namespace {
constexpr size_t kMaxOriginalCap = 10 * 1024 * 1024;
}  // namespace

Result<NoticeConfig> NoticeConfig::load() {
  NoticeConfig c;
  c.me = local_hostname();
  auto to = read_control_string("control/doublebounceto", "postmaster");
  if (!to) return to.error();
  c.doublebounceto = ascii_lower(*to);
  auto max = read_control_uint("control/bouncemaxbytes", c.max_original);
  if (!max) return max.error();
  c.max_original = std::min<uint64_t>(*max, kMaxOriginalCap);
  return c;
}

NoticeTarget notice_target(const Envelope& original, const NoticeConfig& config, bool delay) {
  NoticeTarget t;
  if (original.mark == envelope_mark::kDoubleBounce) {
    t.drop = true;
    t.why = "it is itself a double bounce";
    return t;
  }
  if (original.sender.empty()) {
    if (delay) {
      t.drop = true;
      t.why = "no delay warning for the null sender";
      return t;
    }
    t.envelope = Envelope{"", {config.doublebounceto}, std::string(envelope_mark::kDoubleBounce)};
    return t;
  }
  t.envelope = Envelope{"", {original.sender},
                        std::string(delay ? envelope_mark::kDelay : envelope_mark::kBounce)};
  return t;
}

Status inject_via_chain(const Envelope& envelope, const std::string& message) {
  auto chain = read_control_words("control/queuechain", {"bin/queue"});
  if (!chain) return chain.error();
  return queue_whole_message(*chain, envelope, message);
}

}  // namespace tikimail
