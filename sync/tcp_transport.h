// TcpTransport: the plain mqtt:// transport, a thin Transport over a
// connected platform::Stream.
//
// Loop-thread-only. Callbacks may destroy the transport (the stream is then
// closed and no further callback runs); code here never touches members after
// calling out without checking that it is still alive.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "platform/stream.h"
#include "sync/transport.h"

namespace edgespool::sync {

class TcpTransport final : public Transport {
 public:
  explicit TcpTransport(std::unique_ptr<platform::Stream> stream);
  ~TcpTransport() override;

  void StartReading(DataCallback on_data, EndCallback on_end) override;
  void StopReading() override;
  Status Write(std::vector<std::string> bufs) override;
  size_t write_queue_bytes() const override;
  uint64_t wire_bytes_written() const override { return wire_bytes_; }

 private:
  void End(const Status& why);

  std::unique_ptr<platform::Stream> stream_;
  DataCallback on_data_;
  EndCallback on_end_;
  Status failed_;  // first write error, reported once through on_end_
  bool ended_ = false;
  uint64_t wire_bytes_ = 0;
  // Write callbacks outlive the transport (libuv cancels queued writes on
  // close and still calls back); they hold a weak_ptr to this token.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace edgespool::sync
