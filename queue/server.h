// queue/server.h: the resident queue server, `queue -l SOCKET` (queue/README.md "The server").
// The same store as the queue program, reached over a unix socket instead of an exec per
// message: a parent keeps a fixed number of worker processes, each accepting one handoff
// at a time (common/queue_proto.h, kQueueServerPrefix, says what a handoff is).
#pragma once

#include <cstdint>
#include <string>

#include "common/log.h"

namespace tikimail {

// How long a worker waits for the request after accepting, and for the two files it names:
// a client sends them whole at once (they are files it has written), so only a client that
// holds a worker on purpose waits this long.
inline constexpr long kServerRequestSeconds = 10;
inline constexpr long kServerReadSeconds = 120;
// A worker leaves after this many handoffs, and the parent starts a fresh one.
inline constexpr unsigned kServerHandoffsPerWorker = 1000;
inline constexpr unsigned kServerMaxWorkers = 100;

// Serves one accepted connection `conn` in the current directory (the installation's prefix):
// reads the request, stores the message into queue/ as the queue program would, answers with
// the exit code's byte, and closes `conn`. Returns that exit code.
int serve_handoff(int conn, const Log& log);

// Runs the server on the unix socket `path` with `workers` worker processes until SIGTERM or
// SIGINT, after which each worker finishes its handoff. Returns main's exit status: 0 after a
// stop, 111 when the socket cannot be set up.
int serve_queue(const std::string& path, unsigned workers, const Log& log);

}  // namespace tikimail
