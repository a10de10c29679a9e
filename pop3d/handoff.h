// pop3d/handoff.h: pop3d's side of the checkpassword interface (pop3d/README.md): run the
// next stage with the credentials on fd 3 and read its exit status.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tikimail {

// What the checkpassword stage's exit status means to pop3d.
enum class AuthOutcome {
  kWrong,        // exit 1: wrong credentials (or APOP off)
  kMisuse,       // exit 2: it refused our input
  kTemporary,    // exit 111, killed by a signal, or we could not run it
  kSessionDone,  // any other status: pop3d-session ran and has spoken to the client
};

// Forks; the child gets a pipe's read end on fd 3 (fds 0, 1, 2 as they are, SIGPIPE back to
// its default) and execs argv[0] with argv (execvp; a failed exec exits 111). The parent
// writes `user\0password\0timestamp\0`, closes its end, waits for the child and classifies
// its status. While the child runs, fds 0 and 1 are in blocking mode (they share one file
// description with the child's); a non-blocking one is made so again afterwards.
// `argv` must not be empty; the three fields must hold no NUL and fit in 512 bytes together.
AuthOutcome run_checkpassword(const std::vector<std::string>& argv, std::string_view user, std::string_view password,
                              std::string_view timestamp);

// The exit status of a child classified as above (a waitpid status).
AuthOutcome classify_checkpassword_status(int wait_status);

// A program path for exec that survives a chdir: a relative path with a '/' in it
// ("bin/checkpassword") is made absolute against `cwd`; a bare name (looked up in PATH) or
// an absolute path is returned as it is.
std::string resolve_program(std::string_view program, std::string_view cwd);

}  // namespace tikimail
