// pop3d/mailbox.h: the Maildir as pop3d-session sees it: the session lock, the scan that
// moves new/ into cur/ and lists cur/ in delivery order with POP3 sizes and unique ids, and the
// UPDATE step that removes deleted messages (RFC 1939 sections 4-6; pop3d/README.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "common/status.h"

namespace tikimail {

// Files pop3d-session keeps in the Maildir beside tmp/, new/ and cur/ (dot files: Maildir
// readers skip them).
inline constexpr std::string_view kPop3LockFile = ".tikimail-pop3.lock";
inline constexpr std::string_view kLastLoginFile = ".tikimail-lastlogin";

// RFC 1939 section 7: a unique-id is 1 to 70 characters from 0x21 to 0x7E.
inline constexpr size_t kMaxUid = 70;

struct MailboxMessage {
  std::string name;     // the file name in cur/ ("1700000000.M1P2Q3.mx,S=10,W=12:2,")
  uint64_t octets = 0;  // the size in the CRLF form RETR sends (common/maildir.h CrlfSize)
  std::string uid;      // the UIDL answer, message_uid(name)
};

// Takes the one-session-per-mailbox lock: an exclusive, non-blocking flock(2) on
// <maildir>/.tikimail-pop3.lock (created with mode 0600). The lock is held as long as the
// returned Fd is open. When another session holds it, the error's errno_value() is
// EWOULDBLOCK; any other error is trouble with the Maildir.
Result<Fd> lock_mailbox(const std::string& maildir);

// The bytes stored in new/ and cur/ (sum of the regular files' sizes), for the login policy;
// it does not read any file. Errors: new/ or cur/ cannot be listed.
Result<uint64_t> maildir_bytes(const std::string& maildir);

// Moves every file of new/ into cur/, adding the info ":2," to a name that has no ':' (the
// Maildir specification's step for a reader that has seen a message). Dot files are left
// alone; a file gone meanwhile is skipped. Errors: new/ cannot be listed or a rename failed
// for another reason than ENOENT.
Status move_new_to_cur(const std::string& maildir);

// The regular files of cur/ (dot files, directories and symlinks skipped), in delivery
// order: by the decimal seconds that start the name (0 when it starts otherwise), then by
// name. Each size is the W= of the name when the name has one (and its S=, if present,
// equals the file's size); otherwise the file is read and counted. A file gone between the
// listing and the count is left out.
Result<std::vector<MailboxMessage>> list_cur(const std::string& maildir);

// move_new_to_cur, then list_cur.
Result<std::vector<MailboxMessage>> scan_mailbox(const std::string& maildir);

// The UIDL of a message file: its name up to the first ':' (stable, since a Maildir name
// never changes, and unique), or, when that is longer than kMaxUid or holds bytes outside
// 0x21-0x7E, the 32 lowercase hex digits of its BLAKE2b-128 digest (crypto_generichash).
std::string message_uid(std::string_view name);

// The POP3 size (CrlfSize::octets) of the whole file behind `fd`, read from offset 0.
Result<uint64_t> file_octets(int fd, std::string_view what);

// RFC 1939 section 6 UPDATE: unlinks cur/<name> for each name, then syncs cur/ so that the
// removal survives a crash before the client hears +OK. A file already gone counts as
// removed. Returns how many could not be removed (at least 1 when the sync of cur/ failed);
// 0 means every deletion is on disk.
size_t remove_messages(const std::string& maildir, const std::vector<std::string>& names);

}  // namespace tikimail
