#include "platform/stream_try_write.h"

#include <sys/socket.h>

#include <cerrno>

namespace edgespool::platform {

Result<size_t> TryWriteNow(Stream& stream, std::string_view data) {
  if (data.empty() || stream.write_queue_bytes() != 0) return size_t{0};
  return SendNow(stream.fd(), data);
}

Result<size_t> SendNow(int fd, std::string_view data) {
  if (data.empty() || fd < 0) return size_t{0};
  while (true) {
    // MSG_NOSIGNAL: a peer that hung up is an EPIPE here, never a SIGPIPE.
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    // Not a socket (a pipe in a test): libuv's write path handles it.
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTSOCK) return size_t{0};
    return UvStatus(-errno, "send");
  }
}

}  // namespace edgespool::platform
