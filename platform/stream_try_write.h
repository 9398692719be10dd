// Writing to a Stream without a libuv write request, when nothing is queued.
//
// Why: a uv_write on a socket costs more than its write(2). When the request
// completes, libuv re-arms the socket's epoll watcher (one epoll_ctl(MOD),
// even though the events did not change) and runs the write callback on the
// next loop iteration, which then polls once more. On the producer path that
// was one extra epoll_ctl and one extra epoll_wait per reply write on the
// agent and per publish write in the SDK (perf: ~1 epoll_ctl per message at
// 20,000 msg/s). A small write to a local socket almost always fits in the
// kernel buffer at once, so the caller tries this first and hands only the
// rest, if any, to Stream::Write.
//
// Ordering: used only when stream.write_queue_bytes() == 0 (the condition
// uv_try_write itself checks), so these bytes follow everything written
// before. TryWriteNow is loop-thread-only, like the Stream.
#pragma once

#include <cstddef>
#include <string_view>

#include "platform/status.h"
#include "platform/stream.h"

namespace edgespool::platform {

// Bytes the kernel took now: 0 when the stream has queued writes or the
// socket is full (then use Stream::Write). An error (EPIPE, ECONNRESET...)
// means the connection is gone.
Result<size_t> TryWriteNow(Stream& stream, std::string_view data);

// The same on a stream's fd (Stream::fd()), callable from any thread: the
// caller keeps the fd open and orders its bytes with the loop's own writes
// (the SDK does both under one mutex). 0 when the socket is full or is not a
// socket.
Result<size_t> SendNow(int fd, std::string_view data);

}  // namespace edgespool::platform
