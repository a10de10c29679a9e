// common/capability.h: giving up the capabilities a file capability lent a program
// (deliver-remote's cap_setgid, tlsd's cap_dac_read_search), for good.
#pragma once

#include "common/status.h"

namespace tikimail {

// True when the process has no capability in any set (permitted, effective, inheritable).
bool holds_no_capability();

// Empties every capability set (capset), then checks with capget that none is left. A
// process without capabilities (an ordinary user's install) passes unchanged.
Status drop_capabilities();

}  // namespace tikimail
