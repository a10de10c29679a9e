// deliver-remote/identity.cpp: the identity switch of a set-uid start.
#include "deliver-remote/identity.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>

#include "common/capability.h"

namespace tikimail {

Status become_effective_user() {
  const uid_t ruid = ::getuid(), euid = ::geteuid();
  if (ruid == euid) {
    gid_t egid = ::getegid();
    if (::setresgid(egid, egid, egid) != 0 || ::setresuid(euid, euid, euid) != 0)
      return Status::from_errno("setresuid", errno);
    return Status::ok();
  }
  // Set-uid: the effective user's own group, no supplementary group, then the uid.
  const passwd* pw = ::getpwuid(euid);
  if (pw == nullptr) return Status::temporary("no passwd entry for the effective uid");
  const gid_t gid = pw->pw_gid;
  if (::setgroups(0, nullptr) != 0)
    return Status::from_errno("setgroups (is the file capability cap_setgid=ep set? install.sh sets it)", errno);
  if (::setresgid(gid, gid, gid) != 0) return Status::from_errno("setresgid", errno);
  if (::setresuid(euid, euid, euid) != 0) return Status::from_errno("setresuid", errno);
  return drop_capabilities();
}

}  // namespace tikimail
