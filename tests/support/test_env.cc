#include "tests/support/test_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace edgespool::testing {

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/edgespool-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int ListenOnLoopback(uint16_t port, int backlog, uint16_t* bound_port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, backlog) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return -1;
  }
  if (bound_port) *bound_port = ntohs(addr.sin_port);
  return fd;
}

uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool CommandExists(const std::string& name) {
  std::string cmd = "command -v " + name + " >/dev/null 2>&1";
  return system(cmd.c_str()) == 0;
}

bool IsRoot() { return geteuid() == 0; }

bool WaitForPort(uint16_t port, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// --- Process ---------------------------------------------------------------

Process::~Process() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool Process::Start(const std::vector<std::string>& argv, const std::string& log_path,
                    const std::map<std::string, std::string>& env) {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  pid_ = pid;
  exit_status_ = -1;
  return true;
}

void Process::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

int Process::Wait(int timeout_ms) {
  if (pid_ <= 0) return exit_status_;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      exit_status_ = status;
      return status;
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool Process::running() {
  if (pid_ <= 0) return false;
  int status;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    exit_status_ = status;
    return false;
  }
  return true;
}

// --- Mosquitto -------------------------------------------------------------

Mosquitto::Mosquitto(const std::string& dir, MosquittoOptions options)
    : dir_(dir), options_(std::move(options)), port_(FreePort()) {}

Mosquitto::~Mosquitto() { Stop(); }

std::string Mosquitto::url() const {
  if (!options_.certfile.empty()) return "mqtts://localhost:" + std::to_string(port_);
  return "mqtt://127.0.0.1:" + std::to_string(port_);
}

std::string Mosquitto::log() const { return ReadFile(dir_ + "/mosquitto.log"); }

bool Mosquitto::Start() {
  std::ostringstream conf;
  conf << "listener " << port_ << " " << (options_.certfile.empty() ? "127.0.0.1" : "127.0.0.1")
       << "\n";
  conf << "max_queued_messages 0\nmax_inflight_messages 0\n";
  conf << "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n";
  if (IsRoot()) conf << "user root\n";
  if (options_.persistence) {
    conf << "persistence true\npersistence_location " << dir_ << "/\n";
  }
  if (!options_.certfile.empty()) {
    conf << "cafile " << options_.cafile << "\ncertfile " << options_.certfile << "\nkeyfile "
         << options_.keyfile << "\n";
    if (options_.require_certificate) conf << "require_certificate true\n";
  }
  if (!options_.password_file.empty()) {
    conf << "allow_anonymous false\npassword_file " << options_.password_file << "\n";
  } else {
    conf << "allow_anonymous true\n";
  }
  if (options_.max_packet_size) conf << "max_packet_size " << options_.max_packet_size << "\n";
  conf << options_.extra_config;
  WriteFile(dir_ + "/mosquitto.conf", conf.str());
  if (!process_.Start({"mosquitto", "-c", dir_ + "/mosquitto.conf"}, dir_ + "/mosquitto.log")) {
    return false;
  }
  return WaitForPort(port_, 10000);
}

void Mosquitto::Stop() {
  if (!process_.running()) return;
  process_.Signal(SIGCONT);
  process_.Signal(SIGTERM);
  if (process_.Wait(5000) == -1) {
    process_.Signal(SIGKILL);
    process_.Wait(5000);
  }
}

void Mosquitto::Kill() {
  process_.Signal(SIGKILL);
  process_.Wait(5000);
}

void Mosquitto::Pause() { process_.Signal(SIGSTOP); }
void Mosquitto::Resume() { process_.Signal(SIGCONT); }

}  // namespace edgespool::testing
