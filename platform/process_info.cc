#include "platform/process_info.h"

#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

namespace edgespool::platform {

bool IsTerminal(int fd) { return ::isatty(fd) == 1; }

uint32_t EffectiveUid() { return static_cast<uint32_t>(::geteuid()); }

std::vector<uint32_t> GroupsOfUid(uint32_t uid) {
  std::vector<char> buf(16384);
  struct passwd pw;
  struct passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return {};
  int n = 64;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  if (::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<size_t>(n));  // n now holds the needed count
    if (::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0) return {};
  }
  return std::vector<uint32_t>(groups.begin(), groups.begin() + n);
}

uint64_t PeakRssBytes() {
  struct rusage ru;
  if (::getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

void IgnoreSigpipeIfDefault() {
  struct sigaction old;
  if (::sigaction(SIGPIPE, nullptr, &old) != 0) return;
  if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
}

uint64_t CurrentRssBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

void SetThreadName(const char* name) {
  char short_name[16];
  std::snprintf(short_name, sizeof short_name, "%s", name);
  ::pthread_setname_np(::pthread_self(), short_name);
}

}  // namespace edgespool::platform
