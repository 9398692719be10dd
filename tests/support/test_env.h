// Hermetic test helpers: temporary directories, free loopback ports, child
// processes, and a real mosquitto broker started and stopped by the test.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace edgespool::testing {

// A fresh directory under $TMPDIR, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read, close).
uint16_t FreePort();
// A listening TCP socket on 127.0.0.1:port (0: any free port), SO_REUSEADDR
// set; the port it got goes to *bound_port when given. -1 on failure.
int ListenOnLoopback(uint16_t port, int backlog, uint16_t* bound_port = nullptr);

void WriteFile(const std::string& path, const std::string& content);
std::string ReadFile(const std::string& path);
bool CommandExists(const std::string& name);
bool IsRoot();

// A child process with stdout+stderr captured to a file.
class Process {
 public:
  Process() = default;
  ~Process();  // SIGKILLs and reaps a child still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  // argv[0] is looked up in PATH. env entries are added to the environment.
  bool Start(const std::vector<std::string>& argv, const std::string& log_path,
             const std::map<std::string, std::string>& env = {});
  void Signal(int sig);
  // Waits up to timeout_ms; returns the exit status as from waitpid, or -1 on
  // timeout. Once the child was reaped (here or by running()), returns its
  // status again: a caller that saw running() turn false still learns why.
  int Wait(int timeout_ms);
  bool running();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int exit_status_ = -1;  // of the last child reaped
};

// A real mosquitto on a free loopback port, configured not to drop QoS 1
// messages (see TESTING.md: max_queued_messages 0, max_inflight_messages 0).
struct MosquittoOptions {
  bool persistence = false;
  // TLS: listener with these files (PEM); require_certificate for mutual TLS.
  std::string cafile, certfile, keyfile;
  bool require_certificate = false;
  // password_file in mosquitto_passwd format; allow_anonymous false when set.
  std::string password_file;
  uint32_t max_packet_size = 0;
  std::string extra_config;
};

class Mosquitto {
 public:
  explicit Mosquitto(const std::string& dir, MosquittoOptions options = {});
  ~Mosquitto();
  // Starts (or restarts on the same port) and waits until it accepts.
  bool Start();
  void Stop();   // SIGTERM and wait
  void Kill();   // SIGKILL
  void Pause();  // SIGSTOP
  void Resume(); // SIGCONT
  uint16_t port() const { return port_; }
  // The broker's pid while it runs (benchmarks read its CPU time), else -1.
  pid_t pid() const { return process_.pid(); }
  std::string url() const;  // mqtt://127.0.0.1:PORT or mqtts://localhost:PORT
  std::string log() const;

 private:
  std::string dir_;
  MosquittoOptions options_;
  uint16_t port_;
  Process process_;
};

// Waits until a TCP connect to 127.0.0.1:port succeeds, up to timeout_ms.
bool WaitForPort(uint16_t port, int timeout_ms);

}  // namespace edgespool::testing
