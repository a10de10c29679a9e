// common/maildir.h: writing one message into a Maildir (DESIGN section 3) with the standard
// algorithm: a unique name in tmp/, write, fsync, rename into new/, fsync new/; and the sizes
// a Maildir name carries (",S=<bytes>,W=<octets>", as Maildir++ and Dovecot write them) so
// that a POP3 reader need not read every file. Later issues add Maildir++ quotas (maildirsize).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tikimail {

// What one delivery left in the Maildir.
struct MaildirFile {
  std::string name;     // the file name in new/ ("1700000000.M123456P42Q1.mx,S=1834,W=1873")
  uint64_t bytes = 0;   // the file's size: the header prefix plus the message (S=)
  uint64_t octets = 0;  // its size as POP3 sends it, see CrlfSize (W=)
};

// The size of a message in the form a POP3 server sends it (RFC 1939 section 3): every LF
// not preceded by CR counts as CRLF, a CR already before an LF stays, and a message that does
// not end in LF gets its last line ended (CRLF, or only the LF after a final CR). Dot-stuffing
// and the terminating ".CRLF" are not counted: this is the count a client gets after
// un-stuffing (RFC 1939 LIST and STAT). pop3d's MultilineEncoder sends exactly this form.
class CrlfSize {
 public:
  // Counts the next bytes of the message; chunks may split anywhere, even inside a CRLF.
  void feed(std::string_view bytes);
  uint64_t bytes() const { return bytes_; }  // the bytes fed (the file size)
  uint64_t octets() const;                   // the POP3 size of what was fed

 private:
  uint64_t bytes_ = 0;
  uint64_t added_cr_ = 0;
  char last_ = '\n';  // as if a line had just ended: a first LF becomes CRLF
};

// The sizes a Maildir file name states: ",S=<bytes>" and ",W=<octets>" in the part before
// the first ':' (the info). A field that is absent or not a plain decimal number is nullopt.
struct NameSizes {
  std::optional<uint64_t> bytes;   // S=
  std::optional<uint64_t> octets;  // W=
};
NameSizes parse_name_sizes(std::string_view name);

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

  // Delivers `header` followed by the first `message_bytes` bytes of `message_fd` into
  // `maildir` (the folder that holds tmp/, new/ and cur/). The message fd must be a regular
  // file (a queue entry file: what follows the message there is never copied); it is read
  // with pread(2) from offset 0, so one open fd serves any number of deliveries and its file
  // offset is not used. A file that ends before `message_bytes` is a failure.
  // The file is written as tmp/<unique> and renamed to new/<unique>,S=<bytes>,W=<octets>
  // (the sizes are counted while copying, so they are known only after the write).
  // Returns the name in new/ and the byte counts once the file and its name are on disk.
  // Every failure is temporary (a missing Maildir, ENOSPC, EDQUOT: the mailbox can come
  // back or get room) and leaves nothing behind in tmp/ or new/.
  Result<MaildirFile> deliver(const std::string& maildir, std::string_view header, int message_fd,
                              uint64_t message_bytes);

  // The next unique name: "<seconds>.M<usec>P<pid>Q<counter>.<host>".
  std::string unique_name();

 private:
  std::string host_;
  unsigned long counter_ = 0;
};

}  // namespace tikimail
