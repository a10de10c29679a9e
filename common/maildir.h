// common/maildir.h: writing one message into a Maildir (DESIGN section 3) with the standard
// algorithm: a unique name in tmp/, write, fsync, rename into new/, fsync new/. Later issues
// add Maildir++ quotas (maildirsize) here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tikimail {

// What one delivery left in the Maildir.
struct MaildirFile {
  std::string name;    // the file name in new/ ("1700000000.M123456P42Q1.mx")
  uint64_t bytes = 0;  // the file's size: the header prefix plus the message
};

// The host part of Maildir names: `host` with '/' written as "\057" and ':' as "\072",
// as the Maildir specification asks (cr.yp.to/proto/maildir.html).
std::string maildir_host(std::string_view host);

// Writes messages into Maildirs. One writer per process: its counter (the Q part of the
// unique name) makes names unique within the process, the pid across processes, and the
// time in microseconds across time.
class MaildirWriter {
 public:
  // `host` is the raw host name (gethostname(2) when empty); it is made safe here.
  explicit MaildirWriter(std::string_view host = {});

  // Delivers `header` followed by the whole of `message_fd` into `maildir` (the folder that
  // holds tmp/, new/ and cur/). The message fd must be a regular file; it is read with
  // pread(2) from offset 0 to its end, so one open fd serves any number of deliveries and
  // its file offset is not used.
  // Returns the name in new/ and the byte count once the file and its name are on disk.
  // Every failure is temporary (a missing Maildir, ENOSPC, EDQUOT: the mailbox can come
  // back or get room) and leaves nothing behind in tmp/ or new/.
  Result<MaildirFile> deliver(const std::string& maildir, std::string_view header, int message_fd);

  // The next unique name: "<seconds>.M<usec>P<pid>Q<counter>.<host>".
  std::string unique_name();

 private:
  std::string host_;
  unsigned long counter_ = 0;
};

}  // namespace tikimail
