// mailpasswd/password_input.h: where a new password comes from: the first line of standard
// input when it is not a terminal, else typed twice on /dev/tty without echo.
#pragma once

#include <string_view>

#include "common/password.h"
#include "common/status.h"

namespace tikimail {

// Reads one line from `fd` a byte at a time, so nothing after the line is consumed and no
// stdio buffer keeps a copy. The line ends at LF or end of input; a CR before the LF is
// dropped. Permanent errors: no input at all, or a line check_password refuses (empty,
// too long, NUL or CR inside). Temporary: a read error.
Result<Secret> read_password_line(int fd);

// Prompts on /dev/tty with echo off, twice; the two must match. On SIGINT, SIGTERM,
// SIGHUP or SIGQUIT the terminal is restored first and the signal then acts as usual.
Result<Secret> prompt_password(std::string_view address);

// prompt_password when fd 0 is a terminal, else read_password_line(0).
Result<Secret> read_new_password(std::string_view address);

}  // namespace tikimail
