// deliver-remote/identity.h: becoming tiki-remote wholly when started set-uid by deliver.
#pragma once

#include "common/status.h"

namespace tikimail {

// Leaves nothing of the caller's identity. When started set-uid (the effective uid differs
// from the real one), the process holds CAP_SETGID from the file's capability (install.sh:
// `setcap cap_setgid=ep`), which it uses to drop the caller's supplementary groups (deliver's
// vmail and tiki-queue: the queue would be readable and writable through them) and to take
// the effective user's own group; then it sets real, effective and saved uids to the
// effective one and gives up every capability. Without set-uid (the demo as an ordinary user,
// the tests) it changes nothing but the saved ids.
// An error when a set-uid start cannot drop the groups (no file capability: a broken
// install): running on with the caller's groups would defeat the separation.
Status become_effective_user();

}  // namespace tikimail
