// Small file-system and identity helpers, so that nothing outside platform/
// touches POSIX file or user-database headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "platform/status.h"

namespace edgespool::platform {

Result<std::string> ReadWholeFile(const std::string& path);
// Writes to path.tmp, fsyncs and renames over path, then fsyncs the directory.
Status WriteFileAtomic(const std::string& path, const std::string& content);
// Empty Status if the file can be opened for reading; else why not.
Status CheckReadable(const std::string& path);
bool FileExists(const std::string& path);
// The permission bits (st_mode & 07777) of a file: secrets such as the
// encryption key file are refused when group or others may read them.
Result<unsigned> FileMode(const std::string& path);
// Fills buf from the kernel's CSPRNG (getrandom(2)); never short.
Status RandomBytes(void* buf, size_t len);
Status MakeDirectories(const std::string& dir, unsigned mode = 0755);
// Bytes available to unprivileged users on the file system holding path.
Result<uint64_t> FreeDiskBytes(const std::string& path);
std::string HostName();
// uid/gid of a user or group name.
Result<int64_t> LookupUid(const std::string& user);
Result<int64_t> LookupGid(const std::string& group);

// An exclusive advisory lock (flock) on a file, created if missing, held
// until the FileLock is destroyed or the process dies (the kernel drops it:
// no stale lock after a crash). Two FileLocks on one file conflict even in
// one process. Acquire fails with kUnavailable when someone else holds it.
class FileLock {
 public:
  static Result<FileLock> Acquire(const std::string& path);
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace edgespool::platform
