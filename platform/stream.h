// Byte streams on the loop: a connected TCP or Unix-socket stream, the
// connectors that make them and the listeners that accept them.
//
// A Stream is loop-thread-only and owns its uv handle (see loop.h for the
// close protocol). Reads land in the loop's shared read buffer and are handed
// to the callback synchronously: copy what you keep. Writes own their bytes
// until libuv is done with them; write_queue_bytes() is how a caller applies
// backpressure instead of growing memory.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "platform/loop.h"
#include "platform/status.h"

struct uv_stream_s;
struct uv_getaddrinfo_s;
struct uv_connect_s;

namespace edgespool::platform {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

class Stream {
 public:
  // data/len: bytes received. End: the peer closed (OK) or the read failed.
  using DataCallback = std::function<void(const char* data, size_t len)>;
  using EndCallback = std::function<void(const Status& why)>;
  using WriteCallback = std::function<void(const Status&)>;

  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  void StartReading(DataCallback on_data, EndCallback on_end);
  void StopReading();
  bool reading() const { return reading_; }

  // Queues bytes; the callback (optional) runs once they are written or failed.
  Status Write(std::string data, WriteCallback on_done = {});
  // Queues several buffers as one write request (one writev).
  Status Write(std::vector<std::string> bufs, WriteCallback on_done = {});
  // Bytes accepted by Write() and not yet handed to the kernel.
  size_t write_queue_bytes() const;
  // Half-closes after queued writes.
  void Shutdown();

  // Unix sockets only: the peer's pid/uid/gid (SO_PEERCRED).
  Result<PeerCredentials> PeerCred() const;
  // TCP only: disables Nagle (we coalesce writes ourselves) and sets keepalive.
  void SetTcpOptions(bool nodelay, unsigned keepalive_s);
  int fd() const;
  Loop& loop() { return loop_; }

  // platform/ internal: takes ownership of an initialised, connected handle.
  static std::unique_ptr<Stream> Adopt(Loop& loop, uv_stream_s* handle);

 private:
  Stream(Loop& loop, uv_stream_s* handle);
  static void OnAlloc(void* handle, size_t suggested, void* buf) noexcept;

  Loop& loop_;
  uv_stream_s* handle_;
  bool reading_ = false;
  DataCallback on_data_;
  EndCallback on_end_;
};

// Resolves a host name (uv_getaddrinfo, IPv4 and IPv6) and connects to the
// first address that accepts. Cancel by destroying the request: the callback
// then never runs.
class TcpConnectRequest {
 public:
  using Callback = std::function<void(Result<std::unique_ptr<Stream>>)>;
  TcpConnectRequest(Loop& loop, std::string host, uint16_t port, Callback on_done);
  ~TcpConnectRequest();
  void Start();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Connects to a Unix stream socket synchronously-quick (local), via the loop.
class PipeConnectRequest {
 public:
  using Callback = std::function<void(Result<std::unique_ptr<Stream>>)>;
  PipeConnectRequest(Loop& loop, std::string path, Callback on_done);
  ~PipeConnectRequest();
  void Start();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Accepts connections on a Unix socket path or a TCP host:port.
class Listener {
 public:
  using AcceptCallback = std::function<void(std::unique_ptr<Stream>)>;
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Unix socket at `path`: a stale socket file left by a crash is replaced
  // (only if nothing answers on it), the parent directory is created, and the
  // socket gets `mode` (e.g. 0660).
  static Result<std::unique_ptr<Listener>> ListenUnix(Loop& loop, const std::string& path,
                                                      unsigned mode, int backlog,
                                                      AcceptCallback on_accept);
  // An already-listening fd handed over by systemd socket activation. It is
  // listened on again with `backlog`: listen(2) on a listening socket only
  // resizes its queue, so the unit's Backlog= does not silently shrink to
  // libuv's call here (connections already queued stay queued).
  static Result<std::unique_ptr<Listener>> FromFd(Loop& loop, int fd, bool is_unix,
                                                  AcceptCallback on_accept, int backlog = 1024);
  static Result<std::unique_ptr<Listener>> ListenTcp(Loop& loop, const std::string& host,
                                                     uint16_t port, int backlog,
                                                     AcceptCallback on_accept);
  // The bound TCP port (after port 0) or 0 for Unix sockets.
  uint16_t port() const;
  const std::string& path() const { return path_; }

 private:
  Listener(Loop& loop, uv_stream_s* handle, bool is_unix);
  static void OnConnection(uv_stream_s* server, int status) noexcept;
  Loop& loop_;
  uv_stream_s* handle_;
  bool is_unix_;
  std::string path_;
  AcceptCallback on_accept_;
};

}  // namespace edgespool::platform
