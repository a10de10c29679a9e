// queue/mailq_main.cpp: list the queue: each entry's id, age, size, sender and recipients
// with their state, then a count (queue/README.md, "mailq"). Exit 0, or 111 on trouble.
#include <signal.h>

#include "common/control.h"
#include "common/log.h"
#include "queue/queue_list.h"

using namespace tikimail;

int main() try {
  Log log("mailq");
  ::signal(SIGPIPE, SIG_IGN);  // `mailq | head` ends with a write error, not a signal
  if (Status s = enter_home(); !s) {
    log.fatal("{}", s.message());
    return 111;
  }
  return print_queue("queue", 1, log.program());
} catch (...) {
  return 111;
}
