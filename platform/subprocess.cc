#include "platform/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace edgespool::platform {

namespace {

Status Errno(const char* what) {
  return Status::IoError(std::string(what) + ": " + std::strerror(errno));
}

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// In the child, between fork and exec: only async-signal-safe calls.
[[noreturn]] void ExecChild(const std::vector<char*>& args, const std::vector<char*>& envp, int in,
                            int out, int err) {
  dup2(in, 0);
  dup2(out, 1);
  dup2(err, 2);
  // The parent's SIGPIPE disposition (often ignored) must not leak in.
  signal(SIGPIPE, SIG_DFL);
  execvpe(args[0], args.data(), envp.data());
  _exit(127);
}

}  // namespace

Result<SubprocessResult> RunSubprocess(
    const std::vector<std::string>& argv, std::string_view input, int64_t timeout_ms,
    size_t max_output, const std::vector<std::pair<std::string, std::string>>& env) {
  if (argv.empty()) return Status::InvalidArgument("no command");
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return Errno("pipe");
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return Errno("pipe");
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
    return Errno("pipe");
  }
  // Built before fork: the child of a threaded process must not allocate
  // (another thread may hold the allocator's lock), so no setenv there.
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  for (char** e = environ; *e != nullptr; ++e) {
    bool replaced = false;
    for (const auto& [k, v] : env) {
      replaced = replaced || (std::strncmp(*e, k.c_str(), k.size()) == 0 && (*e)[k.size()] == '=');
    }
    if (!replaced) envp.push_back(*e);
  }
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
    return Errno("fork");
  }
  if (pid == 0) {
    ExecChild(args, envp, in[0], out[1], err[1]);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  int to_child = in[1], from_out = out[0], from_err = err[0];
  fcntl(to_child, F_SETFL, O_NONBLOCK);
  if (input.empty()) CloseFd(&to_child);

  SubprocessResult r;
  size_t written = 0;
  int64_t deadline = NowMs() + timeout_ms;
  while (from_out >= 0 || from_err >= 0) {
    int64_t left = deadline - NowMs();
    if (left <= 0) {
      r.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    pollfd fds[3];
    int n = 0;
    if (to_child >= 0) fds[n++] = {to_child, POLLOUT, 0};
    if (from_out >= 0) fds[n++] = {from_out, POLLIN, 0};
    if (from_err >= 0) fds[n++] = {from_err, POLLIN, 0};
    int ready = poll(fds, static_cast<nfds_t>(n), static_cast<int>(left));
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < n && ready > 0; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == to_child) {
        ssize_t w = write(to_child, input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        // EPIPE: the command does not read its input; that is its business.
        if (w < 0 && errno != EAGAIN && errno != EINTR) CloseFd(&to_child);
        if (written == input.size()) CloseFd(&to_child);
        continue;
      }
      char buf[16384];
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        std::string& sink = fds[i].fd == from_out ? r.out : r.err;
        size_t keep =
            std::min(static_cast<size_t>(got), max_output - std::min(max_output, sink.size()));
        sink.append(buf, keep);
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        CloseFd(fds[i].fd == from_out ? &from_out : &from_err);
      }
    }
  }
  CloseFd(&to_child);
  CloseFd(&from_out);
  CloseFd(&from_err);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (r.timed_out) {
    r.signal = SIGKILL;
    return r;
  }
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  return r;
}

}  // namespace edgespool::platform
