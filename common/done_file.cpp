// common/done_file.cpp: reading and appending queue/done/<id>.
#include "common/done_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string_view>

#include "common/fd.h"

namespace tikimail {

namespace {
// Far above any real envelope's recipient count (smtpd allows control/maxrcpt).
constexpr size_t kMaxDoneFile = 16 * 1024 * 1024;
}  // namespace

Result<std::vector<bool>> read_done(const std::string& path, size_t rcpt_count) {
  auto text = read_file(path, kMaxDoneFile);
  if (!text) {
    if (text.error().errno_value() == ENOENT) return std::vector<bool>(rcpt_count, false);
    return text.error();
  }
  return parse_done(*text, rcpt_count);
}

std::vector<bool> parse_done(std::string_view text, size_t rcpt_count) {
  std::vector<bool> done(rcpt_count, false);
  for (size_t nl = text.find('\n'); nl != std::string_view::npos; nl = text.find('\n')) {
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    size_t index = 0;
    auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), index);
    if (line.empty() || ec != std::errc() || end != line.data() + line.size()) continue;
    if (index < rcpt_count) done[index] = true;
  }
  return done;
}

Status append_done(const std::string& path, size_t index) {
  return append_record(path, fmt::format("{}\n", index));
}

Status append_record(const std::string& path, std::string line) {
  auto fd = open_file(path, O_RDWR | O_APPEND | O_CREAT, 0640);  // read: the last byte
  if (!fd) return fd.error();
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return Status::from_errno("fstat " + path, errno);
  if (st.st_size > 0) {
    char last = '\n';
    if (::pread(fd->get(), &last, 1, st.st_size - 1) != 1) return Status::from_errno("read " + path, errno);
    if (last != '\n') line.insert(0, 1, '\n');  // a crash tore the previous line
  }
  if (Status s = write_all(fd->get(), line); !s) return Status::temporary(path + ": " + s.message());
  // The record is on disk before the next recipient starts: a crash from here on does not
  // deliver this recipient again. The file's size changes, so fdatasync writes it too.
  if (::fdatasync(fd->get()) != 0) return Status::from_errno("fdatasync " + path, errno);
  if (Status s = fd->close(); !s) return s;
  // The first line created the file: its name must survive a crash as well.
  if (st.st_size == 0) {
    auto slash = path.rfind('/');
    return sync_dir(slash == std::string::npos ? "." : path.substr(0, slash));
  }
  return Status::ok();
}

}  // namespace tikimail
