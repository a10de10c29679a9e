// queue/inject.cpp: envelope and header decisions of sendmail.
#include "queue/inject.h"

#include <sysexits.h>

#include <algorithm>

#include "common/address.h"
#include "common/log.h"

namespace tikimail {

namespace {

void add_unique(std::string address, std::vector<std::string>* seen) {
  if (std::find(seen->begin(), seen->end(), address) == seen->end()) seen->push_back(std::move(address));
}

bool is_atext_or_space(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ') return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

}  // namespace

Result<std::string> envelope_address(const ListedAddress& address, std::string_view me) {
  ListedAddress qualified = address;
  if (qualified.domain.empty()) qualified.domain = std::string(me);
  std::string text = qualified.text();
  PathResult parsed = parse_mailbox(text);
  if (!parsed.ok) {
    const char* why = parsed.error == PathError::kTooLong ? "address too long" : "invalid address";
    return Status::permanent(fmt::format("{}: {}", why, log_safe(text)));
  }
  return parsed.path.address.str();
}

Result<std::vector<std::string>> argument_recipients(const std::vector<std::string>& args,
                                                     std::string_view me) {
  std::vector<std::string> rcpts;
  for (const auto& arg : args) {
    auto list = parse_address_list(arg);
    if (!list) return Status::permanent(fmt::format("recipient {}: {}", log_safe(arg), list.error().message()));
    if (list->empty()) return Status::permanent(fmt::format("recipient {}: no address", log_safe(arg)));
    for (const auto& a : *list) {
      auto env = envelope_address(a, me);
      if (!env) return env.error();
      add_unique(std::move(*env), &rcpts);
    }
  }
  return rcpts;
}

Status header_recipients(const std::vector<HeaderField>& fields, std::string_view me,
                         std::vector<std::string>* seen) {
  for (const auto& field : fields) {
    if (!field.is("to") && !field.is("cc") && !field.is("bcc")) continue;
    auto list = parse_address_list(field.unfolded_value());
    if (!list) return Status::permanent(fmt::format("{} field: {}", log_safe(field.name), list.error().message()));
    for (const auto& a : *list) {
      auto env = envelope_address(a, me);
      if (!env) return Status::permanent(fmt::format("{} field: {}", log_safe(field.name), env.error().message()));
      add_unique(std::move(*env), seen);
    }
  }
  return Status::ok();
}

Result<std::string> envelope_sender(std::string_view arg, std::string_view me) {
  if (arg.empty() || arg == "<>") return std::string();
  if (arg.size() >= 2 && arg.front() == '<' && arg.back() == '>') arg = arg.substr(1, arg.size() - 2);
  auto list = parse_address_list(arg);
  if (!list || list->size() != 1) return Status::permanent(fmt::format("invalid sender address: {}", log_safe(arg)));
  return envelope_address(list->front(), me);
}

std::string default_sender(std::string_view login, uid_t uid, std::string_view me) {
  if (!login.empty() && login.size() <= kMaxLocalPart) {
    // parse_mailbox() wants the SMTP form: quote what is not a dot-string ("a b" logins).
    Address a{std::string(login), std::string(me), false};
    std::string smtp = a.smtp();
    if (parse_mailbox(smtp.substr(1, smtp.size() - 2)).ok) return a.str();
  }
  return fmt::format("uid{}@{}", uid, me);
}

std::string from_value(std::string_view address, std::string_view full_name) {
  std::string name;
  for (char c : full_name) name.push_back(static_cast<unsigned char>(c) < 32 || c == 127 ? ' ' : c);
  while (!name.empty() && name.back() == ' ') name.pop_back();
  while (!name.empty() && name.front() == ' ') name.erase(0, 1);
  // The address in RFC 5322 form: the envelope form with the local part quoted where needed.
  auto [local, domain] = split_address(address);
  std::string addr = Address{std::string(local), std::string(domain), false}.smtp();
  addr = addr.substr(1, addr.size() - 2);
  if (name.empty()) return addr;
  if (!std::all_of(name.begin(), name.end(), is_atext_or_space)) {
    std::string quoted = "\"";
    for (char c : name) {
      if (c == '"' || c == '\\') quoted.push_back('\\');
      quoted.push_back(c);
    }
    name = quoted + "\"";
  }
  return fmt::format("{} <{}>", name, addr);
}

std::string compose_header(const std::vector<HeaderField>& fields, bool drop_bcc,
                           const HeaderAdditions& add) {
  std::string out = fmt::format("Received: (tikimail sendmail invoked by uid {}); {}\n", add.uid, add.date);
  bool date = false, message_id = false, from = false;
  for (const auto& f : fields) {
    if (drop_bcc && f.is("bcc")) continue;  // -t: Bcc recipients must stay invisible
    date = date || f.is("date");
    message_id = message_id || f.is("message-id");
    from = from || f.is("from");
    out += f.text;
  }
  if (!date) out += fmt::format("Date: {}\n", add.date);
  if (!message_id) out += fmt::format("Message-ID: {}\n", add.message_id);
  if (!from) out += fmt::format("From: {}\n", add.from);
  out += '\n';
  return out;
}

int sendmail_exit_code(const QueueOutcome& outcome) {
  switch (outcome.exit_code) {
    case queue_exit::kOk: return EX_OK;
    case queue_exit::kAddressTooLong: return EX_DATAERR;
    case queue_exit::kRefused: return EX_UNAVAILABLE;
    case queue_exit::kEnvelopeFormat: return EX_SOFTWARE;
    default: return outcome.permanent() ? EX_UNAVAILABLE : EX_TEMPFAIL;
  }
}

}  // namespace tikimail
