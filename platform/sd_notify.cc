#include "platform/sd_notify.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "platform/log.h"

namespace edgespool::platform {

namespace {

constexpr const char* kNotifySocket = "NOTIFY_SOCKET";
constexpr const char* kWatchdogUsec = "WATCHDOG_USEC";
constexpr const char* kWatchdogPid = "WATCHDOG_PID";
constexpr const char* kListenPid = "LISTEN_PID";
constexpr const char* kListenFds = "LISTEN_FDS";
constexpr const char* kListenFdNames = "LISTEN_FDNAMES";

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// Strict decimal: digits only, no sign, no spaces, no overflow.
bool ParseUint(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Fills a sockaddr_un for a path or an "@abstract" name; returns its length,
// or 0 when the name does not fit.
socklen_t MakeAddress(const std::string& name, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (name.size() >= sizeof(addr->sun_path)) return 0;
  std::memcpy(addr->sun_path, name.data(), name.size());
  // Abstract names are not NUL-terminated: the length says where they end.
  if (name[0] == '@') {
    addr->sun_path[0] = '\0';
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  }
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + 1);
}

}  // namespace

SystemdNotifier SystemdNotifier::FromEnvironment(bool unset_environment) {
  std::string socket = GetEnv(kNotifySocket);
  std::string usec_text = GetEnv(kWatchdogUsec);
  std::string pid_text = GetEnv(kWatchdogPid);
  if (unset_environment) {
    ::unsetenv(kNotifySocket);
    ::unsetenv(kWatchdogUsec);
    ::unsetenv(kWatchdogPid);
  }
  // Only absolute paths and abstract names are valid; anything else is not
  // from systemd and is ignored, as sd_notify does.
  if (!socket.empty() && socket[0] != '/' && socket[0] != '@') {
    ES_LOG_WARN("ignoring NOTIFY_SOCKET: not an absolute path or @name", {{"value", socket}});
    socket.clear();
  }
  uint64_t usec = 0;
  if (!usec_text.empty() && (!ParseUint(usec_text, &usec) || usec == 0)) {
    ES_LOG_WARN("ignoring malformed WATCHDOG_USEC", {{"value", usec_text}});
    usec = 0;
  }
  if (usec > 0 && !pid_text.empty()) {
    uint64_t pid = 0;
    if (!ParseUint(pid_text, &pid)) {
      ES_LOG_WARN("ignoring watchdog: malformed WATCHDOG_PID", {{"value", pid_text}});
      usec = 0;
    } else if (pid != static_cast<uint64_t>(::getpid())) {
      usec = 0;  // the watchdog belongs to another process (e.g. our parent)
    }
  }
  return SystemdNotifier(std::move(socket), usec);
}

SystemdNotifier::SystemdNotifier(std::string socket_path, uint64_t watchdog_usec)
    : socket_path_(std::move(socket_path)), watchdog_usec_(watchdog_usec) {}

SystemdNotifier::~SystemdNotifier() { CloseSocket(); }

SystemdNotifier::SystemdNotifier(SystemdNotifier&& other) noexcept
    : socket_path_(std::move(other.socket_path_)),
      watchdog_usec_(other.watchdog_usec_),
      fd_(std::exchange(other.fd_, -1)) {
  other.socket_path_.clear();
  other.watchdog_usec_ = 0;
}

SystemdNotifier& SystemdNotifier::operator=(SystemdNotifier&& other) noexcept {
  if (this != &other) {
    CloseSocket();
    socket_path_ = std::move(other.socket_path_);
    watchdog_usec_ = std::exchange(other.watchdog_usec_, 0);
    fd_ = std::exchange(other.fd_, -1);
    other.socket_path_.clear();
  }
  return *this;
}

void SystemdNotifier::CloseSocket() {
  // close() is not retried on EINTR: on Linux the fd is released anyway and
  // a retry could close an fd another thread just got.
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

::edgespool::Status SystemdNotifier::Ready() { return Notify("READY=1"); }
::edgespool::Status SystemdNotifier::Stopping() { return Notify("STOPPING=1"); }

::edgespool::Status SystemdNotifier::Reloading() {
  if (!enabled()) return ::edgespool::Status::Ok();
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t usec =
      static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  return Notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

::edgespool::Status SystemdNotifier::Status(std::string_view line) {
  std::string msg = "STATUS=";
  msg.reserve(msg.size() + line.size());
  for (char c : line) msg.push_back(c == '\n' || c == '\r' ? ' ' : c);
  return Notify(msg);
}

::edgespool::Status SystemdNotifier::Watchdog() {
  if (!watchdog_enabled()) return ::edgespool::Status::Ok();
  return Notify("WATCHDOG=1");
}

::edgespool::Status SystemdNotifier::Notify(std::string_view assignments) {
  if (!enabled()) return ::edgespool::Status::Ok();
  sockaddr_un addr;
  socklen_t addr_len = MakeAddress(socket_path_, &addr);
  if (addr_len == 0) {
    return ::edgespool::Status::InvalidArgument("NOTIFY_SOCKET too long: " + socket_path_);
  }
  if (fd_ < 0) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return ::edgespool::Status::IoError(Errno("notify socket"));
  }
  // MSG_DONTWAIT: a manager that does not drain its socket must never stall
  // the loop thread; a lost notification is reported, not waited for.
  ssize_t n = ::sendto(fd_, assignments.data(), assignments.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(&addr), addr_len);
  if (n < 0) {
    std::string why = Errno(("sd_notify to " + socket_path_).c_str());
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return ::edgespool::Status::ResourceExhausted(why);
    }
    if (errno == ECONNREFUSED || errno == ENOENT) return ::edgespool::Status::Unavailable(why);
    return ::edgespool::Status::IoError(why);
  }
  if (static_cast<size_t>(n) != assignments.size()) {
    return ::edgespool::Status::IoError("sd_notify: short datagram to " + socket_path_);
  }
  return ::edgespool::Status::Ok();
}

// --- socket activation -----------------------------------------------------

namespace {

Result<std::vector<ListenFd>> ParseListenFds(const std::string& pid_text,
                                             const std::string& fds_text,
                                             const std::string& names_text, bool names_set) {
  std::vector<ListenFd> out;
  if (pid_text.empty() && fds_text.empty()) return out;
  uint64_t pid = 0;
  if (!ParseUint(pid_text, &pid)) {
    return Status::InvalidArgument("LISTEN_PID is not a pid: '" + pid_text + "'");
  }
  if (pid != static_cast<uint64_t>(::getpid())) return out;  // meant for another process
  uint64_t count = 0;
  // A count beyond the fd table is nonsense; 4096 is far above any unit's.
  if (!ParseUint(fds_text, &count) || count > 4096) {
    return Status::InvalidArgument("LISTEN_FDS is not a count: '" + fds_text + "'");
  }
  std::vector<std::string> names;
  if (names_set) {
    size_t start = 0;
    while (true) {
      size_t colon = names_text.find(':', start);
      names.push_back(names_text.substr(start, colon - start));
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    if (names.size() != count) {
      return Status::InvalidArgument("LISTEN_FDNAMES has " + std::to_string(names.size()) +
                                     " names for LISTEN_FDS=" + std::to_string(count));
    }
  }
  for (uint64_t i = 0; i < count; ++i) {
    ListenFd lf;
    lf.fd = kListenFdsStart + static_cast<int>(i);
    lf.name = names_set ? names[i] : "unknown";
    int flags = ::fcntl(lf.fd, F_GETFD);
    if (flags < 0) {
      return Status::InvalidArgument("LISTEN_FDS: fd " + std::to_string(lf.fd) +
                                     " is not open: " + std::strerror(errno));
    }
    if (!(flags & FD_CLOEXEC)) ::fcntl(lf.fd, F_SETFD, flags | FD_CLOEXEC);
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(lf.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return Status::InvalidArgument("LISTEN_FDS: fd " + std::to_string(lf.fd) +
                                     " is not a socket: " + std::strerror(errno));
    }
    lf.is_unix = addr.ss_family == AF_UNIX;
    out.push_back(std::move(lf));
  }
  return out;
}

}  // namespace

Result<std::vector<ListenFd>> TakeListenFds() {
  std::string pid_text = GetEnv(kListenPid);
  std::string fds_text = GetEnv(kListenFds);
  bool names_set = std::getenv(kListenFdNames) != nullptr;
  std::string names_text = GetEnv(kListenFdNames);
  ::unsetenv(kListenPid);
  ::unsetenv(kListenFds);
  ::unsetenv(kListenFdNames);
  return ParseListenFds(pid_text, fds_text, names_text, names_set);
}

}  // namespace edgespool::platform
