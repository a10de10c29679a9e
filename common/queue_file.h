// common/queue_file.h: the one file of a queue entry, queue/todo/<id> (queue/README.md,
// "Layout"): the message bytes exactly as the chain handed them, then the encoded envelope,
// then a fixed-size trailer that gives the message length. queue writes it; deliver and mailq
// read it. The trailer's encoder and parser live here and nowhere else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/fd.h"
#include "common/status.h"

namespace tikimail {

// The largest envelope `queue` stores (a bigger one is refused with 31); a reader refuses an
// entry whose envelope part is larger.
inline constexpr size_t kMaxEnvelope = 8 * 1024 * 1024;

// The trailer: these 4 bytes, then the message length as 16 lowercase hex digits; 20 bytes in
// all, the last of the file. The leading LF keeps `cat todo/<id>` readable.
inline constexpr std::string_view kQueueFileMagic = "\nTQ1";
inline constexpr size_t kQueueFileTrailer = 20;

// The trailer for a message of `message_bytes` bytes: "\nTQ1" and 16 lowercase hex digits.
std::string queue_file_trailer(uint64_t message_bytes);

// The whole entry file for `message` and an encoded `envelope` (encode_envelope's bytes), as
// queue writes it: message, envelope, trailer. For tests and small tools; queue streams.
std::string queue_file_contents(std::string_view message, std::string_view envelope);

// The message length a trailer states. `trailer` must be the last kQueueFileTrailer bytes of
// a file of `file_size` bytes. Permanent errors: a file shorter than the trailer, a wrong
// magic, anything but 16 lowercase hex digits, a message length that leaves no room for the
// trailer in the file.
Result<uint64_t> parse_queue_file_trailer(std::string_view trailer, uint64_t file_size);

// Where the parts of an entry file are.
struct QueueFileLayout {
  uint64_t message_bytes = 0;  // the message is the file's bytes [0, message_bytes)
  std::string envelope;        // the bytes between the message and the trailer, not decoded
};

// Reads the layout of the entry file open on `fd`: fstat for its size, pread for the trailer
// and the envelope. The fd's offset is neither used nor moved, so the caller can go on to
// read the message from the same fd. `what` names the file in errors ("queue/todo/<id>").
// Errors: permanent for a file that is not a complete entry (as parse_queue_file_trailer) or
// whose envelope part is larger than kMaxEnvelope; temporary when fstat or pread fails, or
// the file ends before its stated size (it changed under us).
Result<QueueFileLayout> read_queue_file_layout(int fd, std::string_view what);

// queue/pool/: spare entry files (queue/README.md, "The pool"). On a filesystem that avoids
// reusing recently freed inodes (ext4 without a journal scans a whole block group of them at
// every create), a new file per message and an unlink per delivery cost more CPU than the
// rest of the queue together; so deliver puts a finished entry's file into the pool instead
// of unlinking it, and queue takes a file from the pool before it creates one. The pool holds
// at most kPoolSlots files, named 0 to kPoolSlots-1 in decimal.
inline constexpr unsigned kPoolSlots = 64;

// Where queue and deliver start looking in the pool for entry `id`: from its last two hex
// digits, which are random (queue/README.md), so that concurrent runs rarely try one slot.
unsigned pool_hint(std::string_view id);

// deliver: moves the finished entry file `todo_path` into a free slot of `queue_dir`/pool
// (rename without replacing, a few slots tried from `hint`); when none is free, or the pool
// is missing, unlinks it. The name is gone from todo/ either way; the caller syncs todo/.
// A name already gone (ENOENT) is no error.
Status retire_entry_file(const std::string& queue_dir, const std::string& todo_path, unsigned hint);

// queue: takes a spare file from `queue_dir`/pool (a few slots tried from `hint`) and renames
// it to `path` (tmp/<id>), then opens it for writing, emptied, with mode `mode`. nullopt when
// the pool has none to give (missing, empty) or the one taken is unusable: not a regular
// file of ours with one link, or still open for reading in a deliver-remote, which holds an
// OFD read lock on it (hold_entry_for_reading); such a file is unlinked, never written.
// The caller then creates the file.
std::optional<Fd> claim_pool_file(const std::string& queue_dir, const std::string& path, unsigned hint, int mode);

// deliver-remote: an OFD read lock on the entry file open on `fd`, held until exit, so that
// queue never refills this file from the pool while we still read the message from it (the
// run may outlive the deliver child that started it). Errors: the lock is taken by a writer.
Status hold_entry_for_reading(int fd);

}  // namespace tikimail
