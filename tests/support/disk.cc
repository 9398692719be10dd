#include "tests/support/disk.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace edgespool::testing {

TmpfsMount::TmpfsMount(const std::string& dir, const std::string& size) : dir_(dir) {
  mkdir(dir.c_str(), 0755);
  std::string opts = "size=" + size;
  mounted_ = mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) == 0;
}

TmpfsMount::~TmpfsMount() {
  if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
}

bool TmpfsMount::Remount(const std::string& options) {
  if (!mounted_) return false;
  unsigned long flags = MS_REMOUNT;  // NOLINT(runtime/int): mount(2)'s type
  std::string data;
  if (options == "ro") {
    flags |= MS_RDONLY;
  } else if (options != "rw") {
    data = options;
  }
  return mount("tmpfs", dir_.c_str(), "tmpfs", flags, data.empty() ? nullptr : data.c_str()) == 0;
}

uint64_t FreeBytes(const std::string& dir) {
  struct statvfs st;
  return statvfs(dir.c_str(), &st) == 0 ? uint64_t{st.f_bavail} * st.f_frsize : 0;
}

uint64_t FillDisk(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return 0;
  std::string chunk(64 * 1024, 'F');
  uint64_t total = 0;
  // Big chunks first, then single pages: the last few KiB count too.
  for (size_t size : {chunk.size(), size_t{4096}, size_t{512}}) {
    while (true) {
      ssize_t n = write(fd, chunk.data(), size);
      if (n <= 0) break;
      total += static_cast<uint64_t>(n);
    }
  }
  close(fd);
  return total;
}

bool SetImmutable(const std::string& path, bool on) {
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  int flags = 0;
  bool ok = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  if (ok) {
    flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
    ok = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  }
  close(fd);
  return ok;
}

}  // namespace edgespool::testing
