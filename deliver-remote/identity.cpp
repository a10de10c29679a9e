// deliver-remote/identity.cpp: the identity switch of a set-uid start.
#include "deliver-remote/identity.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace tikimail {

namespace {

struct CapSets {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
};

}  // namespace

bool holds_no_capability() {
  CapSets caps;
  if (::syscall(SYS_capget, &caps.header, caps.data) != 0) return false;
  for (const auto& d : caps.data)
    if (d.effective != 0 || d.permitted != 0 || d.inheritable != 0) return false;
  return true;
}

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
  CapSets none;
  if (::syscall(SYS_capset, &none.header, none.data) != 0) return Status::from_errno("capset", errno);
  if (!holds_no_capability()) return Status::temporary("a capability is still held");
  return Status::ok();
}

}  // namespace tikimail
