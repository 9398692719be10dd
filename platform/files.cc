#include "platform/files.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace edgespool::platform {

namespace {
std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }
}  // namespace

Result<std::string> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(Errno("open " + path));
    if (errno == EACCES) return Status::PermissionDenied(Errno("open " + path));
    return Status::IoError(Errno("open " + path));
  }
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Status::IoError(Errno("read " + path));
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status WriteFileAtomic(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError(Errno("open " + tmp));
  const char* p = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Status::IoError(Errno("write " + tmp));
      ::close(fd);
      return s;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status s = Status::IoError(Errno("fsync " + tmp));
    ::close(fd);
    return s;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::IoError(Errno("rename " + tmp));
  // The rename is durable only once the directory is: without this a power
  // cut may bring the old file back.
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Status::IoError(Errno("open " + dir));
  int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0) return Status::IoError(Errno("fsync " + dir));
  return Status::Ok();
}

Status CheckReadable(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("no such file: " + path);
    if (errno == EACCES) return Status::PermissionDenied("not readable: " + path);
    return Status::IoError(Errno("open " + path));
  }
  ::close(fd);
  return Status::Ok();
}

Result<unsigned> FileMode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound(Errno("stat " + path));
    if (errno == EACCES) return Status::PermissionDenied(Errno("stat " + path));
    return Status::IoError(Errno("stat " + path));
  }
  return static_cast<unsigned>(st.st_mode & 07777);
}

Status RandomBytes(void* buf, size_t len) {
  auto* p = static_cast<unsigned char*>(buf);
  while (len > 0) {
    ssize_t n = ::getrandom(p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::IoError(Errno("getrandom"));
    p += n;
    len -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Status MakeDirectories(const std::string& dir, unsigned mode) {
  if (dir.empty() || FileExists(dir)) return Status::Ok();
  auto slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    ES_RETURN_IF_ERROR(MakeDirectories(dir.substr(0, slash), mode));
  }
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
    return Status::IoError(Errno("mkdir " + dir));
  }
  return Status::Ok();
}

Result<uint64_t> FreeDiskBytes(const std::string& path) {
  struct statvfs st;
  if (::statvfs(path.c_str(), &st) != 0) return Status::IoError(Errno("statvfs " + path));
  return uint64_t{st.f_bavail} * st.f_frsize;
}

std::string HostName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "edgespool";
  return buf;
}

Result<int64_t> LookupUid(const std::string& user) {
  std::vector<char> buf(16384);
  passwd pw;
  passwd* out = nullptr;
  if (getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &out) != 0 || !out) {
    return Status::NotFound("no such user: " + user);
  }
  return int64_t{out->pw_uid};
}

Result<int64_t> LookupGid(const std::string& group) {
  std::vector<char> buf(16384);
  struct group gr;
  struct group* out = nullptr;
  if (getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &out) != 0 || !out) {
    return Status::NotFound("no such group: " + group);
  }
  return int64_t{out->gr_gid};
}

Result<FileLock> FileLock::Acquire(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EACCES || errno == EROFS) return Status::PermissionDenied(Errno("open " + path));
    return Status::IoError(Errno("open " + path));
  }
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    Status s = errno == EWOULDBLOCK
                   ? Status::Unavailable(path + " is locked by another process")
                   : Status::IoError(Errno("flock " + path));
    ::close(fd);
    return s;
  }
  return FileLock(fd);
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the only descriptor releases the flock
}

}  // namespace edgespool::platform
