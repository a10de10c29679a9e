// deliver/local.cpp: recipient routing and the local delivery step.
#include "deliver/local.h"

#include <sys/stat.h>

#include <cerrno>

#include "common/address.h"
#include "common/control.h"

namespace tikimail {

Result<LocalConfig> LocalConfig::load() {
  LocalConfig config;
  auto rcpthosts = DomainList::load("control/rcpthosts");
  if (!rcpthosts) return rcpthosts.error();
  config.rcpthosts = std::move(*rcpthosts);
  auto recipients = Recipients::load("users/recipients");
  if (!recipients) return recipients.error();
  config.recipients = std::move(*recipients);
  auto postmaster = read_control_string("control/postmaster", "");
  if (!postmaster) return postmaster.error();
  config.postmaster = ascii_lower(*postmaster);
  return config;
}

bool safe_local_part(std::string_view local) {
  if (local.empty() || local.front() == '.') return false;
  for (char c : local) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '+' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

Route failed(std::string address, std::string reason) {
  return Route{Route::Kind::kFailed, std::move(address), "", std::move(reason)};
}

// Classifies a lowercase address; `mapped` is true once postmaster was replaced, so that a
// control/postmaster naming postmaster@ours is looked up instead of mapped again.
Route route_lower(const std::string& address, const LocalConfig& config, bool mapped) {
  auto [local, domain] = split_address(address);
  bool is_postmaster = local == "postmaster" && (domain.empty() || config.rcpthosts.contains(domain));
  if (is_postmaster && !mapped) {
    if (config.postmaster.empty())
      return Route{Route::Kind::kDeferred, address, "", "control/postmaster is missing"};
    return route_lower(config.postmaster, config, true);
  }
  if (domain.empty()) return failed(address, "address has no domain");
  if (!config.rcpthosts.contains(domain)) return Route{Route::Kind::kRemote, address, "", ""};
  if (!config.recipients.contains(address)) return failed(address, "no such user");
  if (!safe_local_part(local)) return failed(address, "local part not allowed in a mailbox path");
  if (!valid_domain(domain)) return failed(address, "domain not allowed in a mailbox path");
  std::string maildir = fmt::format("mail/{}/{}/Maildir", domain, local);
  return Route{Route::Kind::kLocal, address, std::move(maildir), ""};
}

}  // namespace

Route route_rcpt(std::string_view rcpt, const LocalConfig& config) {
  return route_lower(ascii_lower(rcpt), config, false);
}

std::string delivery_header(std::string_view sender, std::string_view rcpt) {
  auto clean = [](std::string_view s) {
    std::string out;
    for (char c : s)
      if (c != '\r' && c != '\n') out.push_back(c);
    return out;
  };
  // RFC 5321 4.4: the reverse-path as a path, its local part quoted again where it was quoted.
  return fmt::format("Return-Path: {}\nDelivered-To: {}\n", clean(envelope_path(sender)), clean(rcpt));
}

Result<MaildirFile> deliver_local(const Route& route, std::string_view sender, int message_fd,
                                  uint64_t message_bytes, MaildirWriter& writer) {
  struct stat st;
  if (::stat(route.maildir.c_str(), &st) != 0) {
    if (errno != ENOENT && errno != ENOTDIR) return Status::from_errno("stat " + route.maildir, errno);
    return Status::temporary(fmt::format("no Maildir at {}", route.maildir));
  }
  if (!S_ISDIR(st.st_mode)) return Status::temporary(fmt::format("{} is not a directory", route.maildir));
  return writer.deliver(route.maildir, delivery_header(sender, route.address), message_fd, message_bytes);
}

}  // namespace tikimail
