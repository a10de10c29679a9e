// common/queue_file.h: the one file of a queue entry, queue/todo/<id> (queue/README.md,
// "Layout"): the message bytes exactly as the chain handed them, then the encoded envelope,
// then a fixed-size trailer that gives the message length. queue writes it; deliver and mailq
// read it. The trailer's encoder and parser live here and nowhere else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

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

}  // namespace tikimail
