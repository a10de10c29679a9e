// mailpasswd/mailbox.cpp: mkdirat/openat down from the prefix, so that no symlink planted in
// mail/ can send a root-run mailpasswd elsewhere.
#include "mailpasswd/mailbox.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/fd.h"

namespace tikimail {

namespace {

constexpr mode_t kParentMode = 0750;
constexpr mode_t kMaildirMode = 0700;

// Makes `name` in the directory `parent` (unless it exists) and opens it without following
// a symlink. A directory made here gets exactly `mode` and, when given, the owner; then its
// parent is fsynced so that the new name survives a crash.
Result<Fd> make_dir(int parent, const std::string& name, mode_t mode, std::optional<MailboxOwner> owner,
                    const std::string& path) {
  bool created = ::mkdirat(parent, name.c_str(), mode) == 0;
  if (!created && errno != EEXIST) return Status::from_errno("mkdir " + path, errno);
  int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("open " + path, errno);
  Fd dir(fd);
  if (!created) return dir;
  if (::fchmod(dir.get(), mode) != 0) return Status::from_errno("chmod " + path, errno);  // not the umask's
  if (owner && ::fchown(dir.get(), owner->uid, owner->gid) != 0) return Status::from_errno("chown " + path, errno);
  Status synced = parent == AT_FDCWD ? sync_dir(".") : sync_fd(parent, path + "/..");
  if (!synced) return synced;
  return dir;
}

}  // namespace

std::optional<MailboxOwner> mailbox_owner() {
  if (::geteuid() != 0) return std::nullopt;
  const struct passwd* pw = ::getpwnam("vmail");
  if (pw == nullptr) return std::nullopt;
  MailboxOwner owner{pw->pw_uid, pw->pw_gid};
  if (const struct group* gr = ::getgrnam("vmail"); gr != nullptr) owner.gid = gr->gr_gid;
  return owner;
}

std::string maildir_path(std::string_view domain, std::string_view local) {
  return fmt::format("mail/{}/{}/Maildir", domain, local);
}

Status create_mailbox(std::string_view domain, std::string_view local, std::optional<MailboxOwner> owner) {
  const std::string d(domain), l(local);
  auto mail = make_dir(AT_FDCWD, "mail", kParentMode, owner, "mail");
  if (!mail) return mail.error();
  auto dom = make_dir(mail->get(), d, kParentMode, owner, "mail/" + d);
  if (!dom) return dom.error();
  auto user = make_dir(dom->get(), l, kParentMode, owner, "mail/" + d + "/" + l);
  if (!user) return user.error();
  const std::string maildir = maildir_path(domain, local);
  auto md = make_dir(user->get(), "Maildir", kMaildirMode, owner, maildir);
  if (!md) return md.error();
  for (const char* sub : {"tmp", "new", "cur"}) {
    auto made = make_dir(md->get(), sub, kMaildirMode, owner, maildir + "/" + sub);
    if (!made) return made.error();
  }
  return Status::ok();
}

}  // namespace tikimail
