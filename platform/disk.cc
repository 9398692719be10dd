#include "platform/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

namespace edgespool::platform {
namespace {

Status ErrnoStatus(int err, const std::string& what) {
  std::string msg = what + ": " + strerrorname_np(err) + " (" + strerror(err) + ")";
  switch (err) {
    case ENOENT: return Status::NotFound(msg);
    case EACCES:
    case EPERM:
    case EROFS: return Status::PermissionDenied(msg);
    case ENOSPC:
    case EDQUOT: return Status::ResourceExhausted(msg);
    default: return Status::IoError(msg);
  }
}

}  // namespace

Result<uint64_t> FileSizeBytes(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat " + path);
  return static_cast<uint64_t>(st.st_size);
}

Status RenameFile(const std::string& from, const std::string& to) {
  if (rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoStatus(errno, "rename " + from + " -> " + to);
  }
  return Status::Ok();
}

Status RemoveFile(const std::string& path) {
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, "unlink " + path);
  return Status::Ok();
}

Status SyncDirectory(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open " + dir);
  Status s;
  if (fsync(fd) != 0) s = ErrnoStatus(errno, "fsync " + dir);
  close(fd);
  return s;
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace edgespool::platform
