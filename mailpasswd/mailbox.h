// mailpasswd/mailbox.h: creating an account's mail/<domain>/<local>/Maildir (DESIGN section 5)
// and giving it to the vmail user (DESIGN section 4).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tikimail {

// Who owns the mailboxes. Set only when running as root and a system user `vmail` exists;
// an ordinary user keeps everything as itself (DESIGN section 4).
struct MailboxOwner {
  uid_t uid;
  gid_t gid;  // group vmail when it exists, else vmail's primary group
};
std::optional<MailboxOwner> mailbox_owner();

// "mail/<domain>/<local>/Maildir", relative to the prefix.
std::string maildir_path(std::string_view domain, std::string_view local);

// Creates, relative to the current directory, what is missing of mail/ (mode 0750),
// mail/<domain> and mail/<domain>/<local> (0750), and Maildir with cur/, new/ and tmp/
// (0700 each), exactly those modes whatever the umask. Each directory this call creates
// (and only those) is chowned to `owner` when given; existing ones are left as they are,
// so an old Maildir is reused untouched. `domain` and `local` must have passed
// check_account_address (no '/', never "." or ".."). A symlink anywhere on the way is
// refused. Each new name is fsynced into its parent before the next step. Errors are
// temporary.
Status create_mailbox(std::string_view domain, std::string_view local, std::optional<MailboxOwner> owner);

}  // namespace tikimail
