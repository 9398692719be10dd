#include "platform/stream.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>

namespace edgespool::platform {

namespace {

// The handle's memory is freed in the close callback (see loop.h).
void CloseStreamHandle(uv_stream_t* h) {
  h->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* handle) {
    if (handle->type == UV_TCP) {
      delete reinterpret_cast<uv_tcp_t*>(handle);
    } else {
      delete reinterpret_cast<uv_pipe_t*>(handle);
    }
  });
}

// A write request owns its buffers until libuv calls back.
struct WriteRequest {
  uv_write_t req;
  std::vector<std::string> bufs;
  Stream::WriteCallback on_done;
};

Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return Status::Ok();
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) return Status::Ok();
  auto slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) ES_RETURN_IF_ERROR(MakeDirs(dir.substr(0, slash)));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::IoError("mkdir " + dir + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

// True if something accepts connections on the Unix socket at path.
bool SocketIsLive(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return live;
}

}  // namespace

// --- Stream ----------------------------------------------------------------

Stream::Stream(Loop& loop, uv_stream_t* handle) : loop_(loop), handle_(handle) {
  handle_->data = this;
}

std::unique_ptr<Stream> Stream::Adopt(Loop& loop, uv_stream_t* handle) {
  return std::unique_ptr<Stream>(new Stream(loop, handle));
}

Stream::~Stream() { CloseStreamHandle(handle_); }

void Stream::OnAlloc(void* handle, size_t, void* out) noexcept {
  auto* h = static_cast<uv_handle_t*>(handle);
  auto* buf = static_cast<uv_buf_t*>(out);
  auto* self = static_cast<Stream*>(h->data);
  if (!self) {
    buf->base = nullptr;
    buf->len = 0;
    return;
  }
  buf->base = self->loop_.read_buffer();
  buf->len = Loop::kReadBufferSize;
}

void Stream::StartReading(DataCallback on_data, EndCallback on_end) {
  on_data_ = std::move(on_data);
  on_end_ = std::move(on_end);
  reading_ = true;
  int rc = uv_read_start(
      handle_,
      [](uv_handle_t* h, size_t s, uv_buf_t* b) { Stream::OnAlloc(h, s, b); },
      [](uv_stream_t* h, ssize_t nread, const uv_buf_t* buf) {
        auto* self = static_cast<Stream*>(h->data);
        if (!self) return;
        if (nread > 0) {
          self->on_data_(buf->base, static_cast<size_t>(nread));
        } else if (nread < 0) {
          self->reading_ = false;
          uv_read_stop(h);
          Status why = nread == UV_EOF ? Status::Ok() : UvStatus(static_cast<int>(nread), "read");
          // The callback may destroy the stream: copy it out first.
          EndCallback end_cb = self->on_end_;
          if (end_cb) end_cb(why);
        }
      });
  if (rc < 0) {
    reading_ = false;
    Status why = UvStatus(rc, "uv_read_start");
    loop_.Post([cb = on_end_, why] {
      if (cb) cb(why);
    });
  }
}

void Stream::StopReading() {
  if (reading_) uv_read_stop(handle_);
  reading_ = false;
}

Status Stream::Write(std::string data, WriteCallback on_done) {
  std::vector<std::string> bufs;
  bufs.push_back(std::move(data));
  return Write(std::move(bufs), std::move(on_done));
}

Status Stream::Write(std::vector<std::string> bufs, WriteCallback on_done) {
  auto* req = new WriteRequest{};
  req->bufs = std::move(bufs);
  req->on_done = std::move(on_done);
  std::vector<uv_buf_t> uvbufs;
  uvbufs.reserve(req->bufs.size());
  for (auto& b : req->bufs) uvbufs.push_back(uv_buf_init(b.data(), static_cast<unsigned>(b.size())));
  int rc = uv_write(&req->req, handle_, uvbufs.data(), static_cast<unsigned>(uvbufs.size()),
                    [](uv_write_t* r, int status) {
                      auto* wr = reinterpret_cast<WriteRequest*>(r);
                      if (wr->on_done) wr->on_done(UvStatus(status, "write"));
                      delete wr;
                    });
  if (rc < 0) {
    delete req;
    return UvStatus(rc, "uv_write");
  }
  return Status::Ok();
}

size_t Stream::write_queue_bytes() const { return handle_->write_queue_size; }

void Stream::Shutdown() {
  auto* req = new uv_shutdown_t;
  if (uv_shutdown(req, handle_, [](uv_shutdown_t* r, int) { delete r; }) < 0) delete req;
}

Result<PeerCredentials> Stream::PeerCred() const {
  int fd = this->fd();
  if (fd < 0) return Status::InvalidArgument("stream has no fd");
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return Status::IoError(std::string("SO_PEERCRED: ") + std::strerror(errno));
  }
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

void Stream::SetTcpOptions(bool nodelay, unsigned keepalive_s) {
  if (handle_->type != UV_TCP) return;
  auto* tcp = reinterpret_cast<uv_tcp_t*>(handle_);
  uv_tcp_nodelay(tcp, nodelay ? 1 : 0);
  uv_tcp_keepalive(tcp, keepalive_s > 0 ? 1 : 0, keepalive_s);
}

int Stream::fd() const {
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(handle_), &fd) != 0) return -1;
  return fd;
}

// --- TcpConnectRequest -----------------------------------------------------

// Shared with the in-flight libuv requests so that destroying the
// TcpConnectRequest cancels the callback without freeing memory libuv holds.
struct TcpConnectRequest::State {
  Loop* loop;
  std::string host;
  uint16_t port;
  Callback on_done;
  bool cancelled = false;
  addrinfo* addrs = nullptr;
  addrinfo* next = nullptr;
  Status last_error;
  std::shared_ptr<State> self;  // keeps State alive while libuv holds it
  // The socket of the connect in flight. Cancelling closes it at once: a
  // connect into a black hole would otherwise hold it for the kernel's ~2
  // minutes of SYN retries, and still be open when the loop closes.
  uv_tcp_t* connecting = nullptr;

  static void CloseTcp(uv_tcp_t* tcp) {
    tcp->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(tcp),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }

  ~State() {
    if (addrs) uv_freeaddrinfo(addrs);
  }
  void Finish(Result<std::unique_ptr<Stream>> result) {
    auto keep = std::move(self);
    if (!cancelled && on_done) {
      Callback cb = std::move(on_done);
      cb(std::move(result));
    }
  }
  void TryNext() {
    if (cancelled) return Finish(Status::Cancelled("connect cancelled"));
    if (!next) {
      return Finish(last_error.ok() ? Status::Unavailable("no address for " + host) : last_error);
    }
    addrinfo* ai = next;
    next = next->ai_next;
    auto* tcp = new uv_tcp_t;
    uv_tcp_init(loop->raw(), tcp);
    struct ConnectReq {
      uv_connect_t req;
      State* state;
      uv_tcp_t* tcp;
    };
    auto* cr = new ConnectReq{{}, this, tcp};
    connecting = tcp;
    int rc = uv_tcp_connect(&cr->req, tcp, ai->ai_addr, [](uv_connect_t* r, int status) {
      auto* c = reinterpret_cast<ConnectReq*>(r);
      State* st = c->state;
      uv_tcp_t* handle = c->tcp;
      delete c;
      st->connecting = nullptr;
      if (status < 0 || st->cancelled) {
        // Cancelled: the handle is already closing (UV_ECANCELED from its close).
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(handle))) CloseTcp(handle);
        st->last_error = UvStatus(status < 0 ? status : UV_ECANCELED,
                                  ("connect " + st->host + ":" + std::to_string(st->port)).c_str());
        if (st->cancelled) return st->Finish(Status::Cancelled("connect cancelled"));
        return st->TryNext();
      }
      st->Finish(Stream::Adopt(*st->loop, reinterpret_cast<uv_stream_t*>(handle)));
    });
    if (rc < 0) {
      delete cr;
      connecting = nullptr;
      CloseTcp(tcp);
      last_error = UvStatus(rc, "uv_tcp_connect");
      TryNext();
    }
  }
};

TcpConnectRequest::TcpConnectRequest(Loop& loop, std::string host, uint16_t port,
                                     Callback on_done)
    : state_(std::make_shared<State>()) {
  state_->loop = &loop;
  state_->host = std::move(host);
  state_->port = port;
  state_->on_done = std::move(on_done);
}

TcpConnectRequest::~TcpConnectRequest() {
  state_->cancelled = true;
  if (state_->connecting) State::CloseTcp(state_->connecting);  // its callback sees ECANCELED
}

void TcpConnectRequest::Start() {
  struct ResolveReq {
    uv_getaddrinfo_t req;
    State* state;
  };
  state_->self = state_;
  auto* rr = new ResolveReq{{}, state_.get()};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  std::string port = std::to_string(state_->port);
  int rc = uv_getaddrinfo(
      state_->loop->raw(), &rr->req,
      [](uv_getaddrinfo_t* r, int status, addrinfo* res) {
        auto* req = reinterpret_cast<ResolveReq*>(r);
        State* st = req->state;
        delete req;
        if (status < 0) {
          if (res) uv_freeaddrinfo(res);
          return st->Finish(UvStatus(status, ("resolve " + st->host).c_str()));
        }
        st->addrs = res;
        st->next = res;
        st->TryNext();
      },
      state_->host.c_str(), port.c_str(), &hints);
  if (rc < 0) {
    delete rr;
    Status why = UvStatus(rc, "uv_getaddrinfo");
    state_->loop->Post([st = state_, why] { st->Finish(why); });
  }
}

// --- PipeConnectRequest ----------------------------------------------------

struct PipeConnectRequest::State {
  Loop* loop;
  std::string path;
  Callback on_done;
  bool cancelled = false;
  std::shared_ptr<State> self;
};

PipeConnectRequest::PipeConnectRequest(Loop& loop, std::string path, Callback on_done)
    : state_(std::make_shared<State>()) {
  state_->loop = &loop;
  state_->path = std::move(path);
  state_->on_done = std::move(on_done);
}

PipeConnectRequest::~PipeConnectRequest() { state_->cancelled = true; }

void PipeConnectRequest::Start() {
  struct ConnectReq {
    uv_connect_t req;
    State* state;
    uv_pipe_t* pipe;
  };
  state_->self = state_;
  auto* pipe = new uv_pipe_t;
  uv_pipe_init(state_->loop->raw(), pipe, 0);
  auto* cr = new ConnectReq{{}, state_.get(), pipe};
  uv_pipe_connect(&cr->req, pipe, state_->path.c_str(), [](uv_connect_t* r, int status) {
    auto* c = reinterpret_cast<ConnectReq*>(r);
    State* st = c->state;
    uv_pipe_t* handle = c->pipe;
    delete c;
    auto keep = std::move(st->self);
    if (status < 0 || st->cancelled) {
      handle->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(handle),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
      if (!st->cancelled && st->on_done) {
        st->on_done(UvStatus(status < 0 ? status : UV_ECANCELED,
                             ("connect " + st->path).c_str()));
      }
      return;
    }
    st->on_done(Stream::Adopt(*st->loop, reinterpret_cast<uv_stream_t*>(handle)));
  });
}

// --- Listener --------------------------------------------------------------

Listener::Listener(Loop& loop, uv_stream_t* handle, bool is_unix)
    : loop_(loop), handle_(handle), is_unix_(is_unix) {
  handle_->data = this;
}

Listener::~Listener() {
  CloseStreamHandle(handle_);
  if (is_unix_ && !path_.empty()) ::unlink(path_.c_str());
}

void Listener::OnConnection(uv_stream_t* server, int status) noexcept {
  auto* self = static_cast<Listener*>(server->data);
  if (!self || status < 0) return;
  uv_stream_t* client;
  if (self->is_unix_) {
    auto* p = new uv_pipe_t;
    uv_pipe_init(server->loop, p, 0);
    client = reinterpret_cast<uv_stream_t*>(p);
  } else {
    auto* t = new uv_tcp_t;
    uv_tcp_init(server->loop, t);
    client = reinterpret_cast<uv_stream_t*>(t);
  }
  if (uv_accept(server, client) != 0) {
    CloseStreamHandle(client);
    return;
  }
  self->on_accept_(Stream::Adopt(self->loop_, client));
}

Result<std::unique_ptr<Listener>> Listener::ListenUnix(Loop& loop, const std::string& path,
                                                        unsigned mode, int backlog,
                                                        AcceptCallback on_accept) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Status::InvalidArgument("socket path too long (max 107 bytes): " + path);
  }
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos) ES_RETURN_IF_ERROR(MakeDirs(path.substr(0, slash)));
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Status(Code::kAlreadyExists, path + " exists and is not a socket");
    }
    if (SocketIsLive(path)) {
      return Status(Code::kAlreadyExists, "another process is listening on " + path);
    }
    ::unlink(path.c_str());  // stale socket from a crash
  }
  auto* pipe = new uv_pipe_t;
  uv_pipe_init(loop.raw(), pipe, 0);
  std::unique_ptr<Listener> l(new Listener(loop, reinterpret_cast<uv_stream_t*>(pipe), true));
  int rc = uv_pipe_bind(pipe, path.c_str());
  if (rc < 0) return UvStatus(rc, ("bind " + path).c_str());
  l->path_ = path;
  if (::chmod(path.c_str(), mode) != 0) {
    return Status::IoError("chmod " + path + ": " + std::strerror(errno));
  }
  l->on_accept_ = std::move(on_accept);
  rc = uv_listen(l->handle_, backlog, &Listener::OnConnection);
  if (rc < 0) return UvStatus(rc, ("listen " + path).c_str());
  return l;
}

Result<std::unique_ptr<Listener>> Listener::FromFd(Loop& loop, int fd, bool is_unix,
                                                   AcceptCallback on_accept, int backlog) {
  uv_stream_t* h;
  int rc;
  if (is_unix) {
    auto* p = new uv_pipe_t;
    uv_pipe_init(loop.raw(), p, 0);
    rc = uv_pipe_open(p, fd);
    h = reinterpret_cast<uv_stream_t*>(p);
  } else {
    auto* t = new uv_tcp_t;
    uv_tcp_init(loop.raw(), t);
    rc = uv_tcp_open(t, fd);
    h = reinterpret_cast<uv_stream_t*>(t);
  }
  std::unique_ptr<Listener> l(new Listener(loop, h, is_unix));
  if (rc < 0) return UvStatus(rc, "adopt listening fd");
  l->on_accept_ = std::move(on_accept);
  rc = uv_listen(h, backlog, &Listener::OnConnection);
  if (rc < 0) return UvStatus(rc, "listen on adopted fd");
  return l;
}

Result<std::unique_ptr<Listener>> Listener::ListenTcp(Loop& loop, const std::string& host,
                                                       uint16_t port, int backlog,
                                                       AcceptCallback on_accept) {
  sockaddr_storage addr{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    return Status::InvalidArgument("not an IP address: " + host);
  }
  auto* tcp = new uv_tcp_t;
  uv_tcp_init(loop.raw(), tcp);
  std::unique_ptr<Listener> l(new Listener(loop, reinterpret_cast<uv_stream_t*>(tcp), false));
  int rc = uv_tcp_bind(tcp, reinterpret_cast<sockaddr*>(&addr), 0);
  if (rc < 0) return UvStatus(rc, ("bind " + host + ":" + std::to_string(port)).c_str());
  l->on_accept_ = std::move(on_accept);
  rc = uv_listen(l->handle_, backlog, &Listener::OnConnection);
  if (rc < 0) return UvStatus(rc, ("listen " + host + ":" + std::to_string(port)).c_str());
  return l;
}

uint16_t Listener::port() const {
  if (is_unix_) return 0;
  sockaddr_storage addr{};
  int len = sizeof addr;
  uv_tcp_getsockname(reinterpret_cast<const uv_tcp_t*>(handle_),
                     reinterpret_cast<sockaddr*>(&addr), &len);
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return 0;
}

}  // namespace edgespool::platform
