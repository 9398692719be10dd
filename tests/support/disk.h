// Disk faults made by a test (TESTING.md: "disk full: a small tmpfs made by
// the test"): a tmpfs of a given size mounted on a directory, remounted
// read-only or bigger; a file that eats the free space; the immutable
// attribute (chattr +i), which makes even an already open file refuse
// writes (EPERM) - the way to make a journal unwritable under a running
// agent, since a remount read-only is refused (EBUSY) while a file is open
// for writing. Each needs root (CAP_SYS_ADMIN / CAP_LINUX_IMMUTABLE): a test
// skips with a clear message when one is refused.
#pragma once

#include <cstdint>
#include <string>

namespace edgespool::testing {

class TmpfsMount {
 public:
  // Creates dir if needed and mounts a tmpfs of `size` ("24m") on it.
  TmpfsMount(const std::string& dir, const std::string& size);
  ~TmpfsMount();  // lazy unmount (MNT_DETACH): works while files are open
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& dir() const { return dir_; }
  // mount -o remount,OPTIONS (e.g. "ro", "rw", "size=64m"); false on refusal.
  bool Remount(const std::string& options);

 private:
  std::string dir_;
  bool mounted_ = false;
};

// Free bytes for an unprivileged writer on the filesystem holding dir.
uint64_t FreeBytes(const std::string& dir);
// Writes path until the filesystem refuses (ENOSPC); returns bytes written.
uint64_t FillDisk(const std::string& path);
// Sets or clears FS_IMMUTABLE_FL on path (file or directory); false when
// the filesystem or the caller's capabilities refuse. ext4 then refuses
// writes on descriptors opened before (EPERM); tmpfs takes the flag but
// lets them write (measured on Linux 6.18): use a directory on a real disk.
bool SetImmutable(const std::string& path, bool on);

}  // namespace edgespool::testing
