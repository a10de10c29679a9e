// deliver/queue_scan.cpp: listing todo/ and removing garbage.
#include "deliver/queue_scan.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "common/queue_proto.h"

namespace tikimail {

namespace {

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

// The names in `dir` except "." and "..".
Result<std::vector<std::string>> list_dir(const std::string& dir) {
  std::unique_ptr<DIR, DirCloser> d(::opendir(dir.c_str()));
  if (!d) return Status::from_errno("opendir " + dir, errno);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(d.get())) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
    errno = 0;
  }
  if (errno != 0) return Status::from_errno("readdir " + dir, errno);
  return names;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 || errno != ENOENT;  // in doubt, it exists
}

// Removes `path` when it is a regular file last modified before `now - max_age`.
bool remove_if_old(const std::string& path, time_t now, time_t max_age, const char* why,
                   const Log& log, std::vector<std::string>* removed) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  if (st.st_mtime > now - max_age) return false;
  if (::unlink(path.c_str()) != 0) {
    if (errno != ENOENT) log.warn("cannot remove garbage {}: {}", path, std::strerror(errno));
    return false;
  }
  log.info("garbage removed path={} reason=\"{}\" age={}s", path, why,
           static_cast<long long>(now - st.st_mtime));
  removed->push_back(path);
  return true;
}

}  // namespace

Result<std::vector<std::string>> scan_todo(const std::string& queue_dir) {
  auto names = list_dir(queue_dir + "/todo");
  if (!names) return names.error();
  std::vector<std::string> ids;
  for (auto& name : *names)
    if (valid_message_id(name)) ids.push_back(std::move(name));
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::string> collect_garbage(const std::string& queue_dir, time_t now, time_t max_age,
                                         const Log& log) {
  std::vector<std::string> removed;
  if (auto names = list_dir(queue_dir + "/tmp"); names) {
    for (const auto& name : *names)
      remove_if_old(queue_dir + "/tmp/" + name, now, max_age, "stale temporary file", log, &removed);
  } else {
    log.warn("{}", names.error().message());
  }
  for (const char* sub : {"done", "info", "bounce"}) {
    auto names = list_dir(queue_dir + "/" + sub);
    if (!names) {
      log.warn("{}", names.error().message());
      continue;
    }
    for (const auto& name : *names) {
      // info/<id>.tmp: a replacement a crash interrupted.
      if (name.size() == 20 && name.ends_with(".tmp") && valid_message_id(name.substr(0, 16))) {
        remove_if_old(queue_dir + "/" + sub + "/" + name, now, max_age, "stale temporary file", log, &removed);
        continue;
      }
      if (!valid_message_id(name) || exists(queue_dir + "/todo/" + name)) continue;
      remove_if_old(queue_dir + "/" + sub + "/" + name, now, max_age, "no todo entry", log, &removed);
    }
  }
  return removed;
}

}  // namespace tikimail
