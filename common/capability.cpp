// common/capability.cpp: capget and capset through the raw system calls (no libcap).
#include "common/capability.h"

#include <linux/capability.h>
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

Status drop_capabilities() {
  CapSets none;
  if (::syscall(SYS_capset, &none.header, none.data) != 0) return Status::from_errno("capset", errno);
  if (!holds_no_capability()) return Status::temporary("a capability is still held");
  return Status::ok();
}

}  // namespace tikimail
