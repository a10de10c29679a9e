// deliver-remote/main.cpp: delivers one queued message to the recipients of one remote domain
// over one SMTP connection, and tells deliver the result of each (deliver-remote/README.md).
#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include "common/fd.h"
#include "common/log.h"
#include "common/queue_file.h"
#include "common/queue_proto.h"
#include "deliver-remote/delivery.h"
#include "deliver-remote/identity.h"

using namespace tikimail;

int main(int argc, char** argv) try {
  Log log("deliver-remote");
  ::signal(SIGPIPE, SIG_IGN);  // a peer that closed is a failed write, not a death
  // Set-uid tiki-remote: become it wholly (ids, groups, no capability left), so that nothing
  // of the caller's identity stays (deliver-remote/identity.h).
  if (Status s = become_effective_user(); !s) {
    log.fatal("cannot drop the caller's identity: {}", s.message());
    return 111;
  }
  if (::getuid() == 0 || ::geteuid() == 0) {
    log.fatal("refusing to run as root");
    return 111;
  }
  // The hard stop: the caller cannot kill us once we are tiki-remote. SIGALRM's default
  // action ends the run; deliver then retries every recipient of the call.
  ::signal(SIGALRM, SIG_DFL);
  sigset_t alarm_only;
  sigemptyset(&alarm_only);
  sigaddset(&alarm_only, SIGALRM);
  ::sigprocmask(SIG_UNBLOCK, &alarm_only, nullptr);  // a mask inherited across exec must not hold it
  ::alarm(kRunHardLimit);
  // MSGID is the only thing taken from the environment; the rest is dropped, so that no
  // variable reaches the resolver or OpenSSL.
  const char* env_id = std::getenv("MSGID");
  std::string msgid = env_id != nullptr && valid_message_id(env_id) ? env_id : "-";
  ::clearenv();

  auto job = parse_job(std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc));
  if (!job) {
    log.fatal("{}", job.error().message());
    return 100;
  }
  job->msgid = msgid;
  // Until we exit, queue may not refill this entry file from its pool (common/queue_file.h):
  // we may outlive the deliver child that started us, and the entry be finished meanwhile.
  if (Status s = hold_entry_for_reading(0); !s) {
    log.fatal("{} {}", msgid, s.message());
    return 111;
  }
  std::vector<std::string> warnings;
  auto config = RemoteConfig::load(&warnings);  // relative to the prefix, deliver's cwd
  for (const std::string& w : warnings) log.warn("{} {}", msgid, w);
  if (!config) {
    log.fatal("{} cannot read configuration: {}", msgid, config.error().message());
    return 111;
  }
  auto results = deliver_job(*job, *config, log);
  if (!results) {
    log.fatal("{} {}", msgid, results.error().message());
    return 111;
  }
  std::string out;
  for (const RemoteResult& r : *results) out += encode_result(r);
  if (Status s = write_all(1, out); !s) {
    log.fatal("{} cannot write the results: {}", msgid, s.message());
    return 111;
  }
  return 0;
} catch (...) {
  return 111;  // a bug or out of memory: no results, deliver retries later
}
