#include "sync/tcp_transport.h"

#include <utility>

namespace edgespool::sync {

TcpTransport::TcpTransport(std::unique_ptr<platform::Stream> stream)
    : stream_(std::move(stream)) {}

TcpTransport::~TcpTransport() = default;

void TcpTransport::StartReading(DataCallback on_data, EndCallback on_end) {
  on_data_ = std::move(on_data);
  on_end_ = std::move(on_end);
  if (ended_) return;
  if (!failed_.ok()) {  // a write failed before anyone listened
    std::weak_ptr<bool> alive = alive_;
    stream_->loop().Post([this, alive] {
      if (alive.lock()) End(failed_);
    });
    return;
  }
  stream_->StartReading([this](const char* data, size_t len) { on_data_(data, len); },
                        [this](const Status& why) { End(why); });
}

void TcpTransport::StopReading() { stream_->StopReading(); }

Status TcpTransport::Write(std::vector<std::string> bufs) {
  if (ended_) return Status::Unavailable("write on a closed connection");
  if (!failed_.ok()) return failed_;
  if (bufs.empty()) return Status::Ok();
  uint64_t bytes = 0;
  for (const auto& b : bufs) bytes += b.size();
  std::weak_ptr<bool> alive = alive_;
  return stream_->Write(std::move(bufs), [this, alive, bytes](const Status& st) {
    if (!alive.lock()) return;
    if (st.ok()) {
      wire_bytes_ += bytes;
    } else if (failed_.ok()) {
      failed_ = st;
      if (on_end_) End(st);
    }
  });
}

size_t TcpTransport::write_queue_bytes() const { return stream_->write_queue_bytes(); }

void TcpTransport::End(const Status& why) {
  if (ended_) return;
  ended_ = true;
  stream_->StopReading();
  EndCallback cb = std::move(on_end_);
  if (cb) cb(why);  // may destroy this
}

}  // namespace edgespool::sync
