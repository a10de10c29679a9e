// queue/main.cpp: store one message durably; the exit status is the answer (queue/README.md).
// Message on fd 0, envelope on fd 1. May run set-uid tiki-queue: nothing from the
// environment is trusted but a valid MSGID.
//
//     queue -l SOCKET [-c WORKERS]   the resident server instead (queue/server.h)
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/control.h"
#include "common/log.h"
#include "common/queue_proto.h"
#include "queue/queue_dir.h"
#include "queue/server.h"

using namespace tikimail;

namespace {

// queue -l SOCKET [-c WORKERS]: 100 on a usage error.
int server_main(int argc, char** argv, const Log& log) {
  std::string socket;
  unsigned long workers = 8;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-l" && i + 1 < argc) {
      socket = argv[++i];
    } else if (a == "-c" && i + 1 < argc) {
      char* end = nullptr;
      workers = std::strtoul(argv[++i], &end, 10);
      if (*end != '\0' || end == argv[i]) workers = 0;
    } else {
      log.fatal("usage: queue -l SOCKET [-c WORKERS]");
      return 100;
    }
  }
  if (socket.empty()) {
    log.fatal("usage: queue -l SOCKET [-c WORKERS]");
    return 100;
  }
  if (Status s = enter_home(); !s) {
    log.fatal("{}", s.message());
    return 111;
  }
  return serve_queue(socket, static_cast<unsigned>(std::min(workers, 1000UL)), log);
}

}  // namespace

int main(int argc, char** argv) try {
  Log log("queue");
  // Arguments mean the server; the queue program itself takes none (and ignores any, as a
  // chain stage may be given some: only "-l" as the first one starts the server).
  if (argc > 1 && std::strcmp(argv[1], "-l") == 0) return server_main(argc, argv, log);
  ::umask(027);                    // files kQueueFileMode (0640), never wider
  ::signal(SIGPIPE, SIG_IGN);      // a runner that closes the trigger fifo must not kill us
  ::signal(SIGALRM, exit_on_alarm);
  ::alarm(kQueueReadSeconds + 60);
  if (Status s = enter_home(); !s) {
    log.fatal("{}", s.message());
    return queue_exit::kQueueTrouble;  // 61: problem with the home directory
  }
  auto databytes = read_control_uint("control/databytes", 20971520);
  if (!databytes) {
    log.fatal("cannot read configuration: {}", databytes.error().message());
    return queue_exit::kConfig;
  }
  std::string id = choose_message_id(std::getenv("MSGID"));
  return store_and_log(QueueDir("queue"), 0, 1, id, *databytes + kChainHeaderRoom,
                       Deadline::after_seconds(kQueueReadSeconds), "", log);
} catch (...) {
  return queue_exit::kBug;  // 81: nothing thrown escapes; what was created is garbage
}
