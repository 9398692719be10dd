#include "agent/server/connection.h"

#include <cassert>
#include <utility>

#include "platform/stream_try_write.h"

namespace edgespool::agent::server {

namespace pr = ::edgespool::protocol;

namespace {

// Output buffer capacity a connection keeps between turns.
constexpr size_t kKeepOutBytes = 16 * 1024;

}  // namespace

// --- Connection: replies in request order -------------------------------------

Connection::Connection(Connections& set, uint64_t id, std::unique_ptr<platform::Stream> stream)
    : set_(set),
      id_(id),
      stream_(std::move(stream)),
      decoder_(set.max_frame_body_, set.max_frame_body_ * 4) {
  auto cred = stream_->PeerCred();
  if (cred.ok()) {
    uid_ = cred->uid;
    gid_ = cred->gid;
  }
}

uint64_t Connection::PushSlot(size_t payload_bytes) {
  uint64_t serial = next_serial();
  slots_.emplace_back();
  slots_.back().payload_bytes = payload_bytes;
  pending_bytes_ += payload_bytes;
  return serial;
}

void Connection::CompleteSlot(uint64_t serial, const pr::Reply& reply, std::string_view body,
                              bool close_after) {
  assert(serial >= front_serial_ && serial < next_serial());
  Slot& slot = slots_[serial - front_serial_];
  slot.ready = true;
  if (serial == front_serial_) {
    pr::AppendReplyFrame(&out_, reply, body);
  } else {
    pr::AppendReplyFrame(&slot.frame, reply, body);
  }
  slot.close_after = close_after;
  pending_bytes_ -= slot.payload_bytes;
  slot.payload_bytes = 0;
  if (serial + 1 > ready_end_) ready_end_ = serial + 1;
  ReleaseReady();
  MarkDirty();
  UpdateThrottle();
}

void Connection::ReplyNow(const pr::Reply& reply, std::string_view body, bool close_after) {
  CompleteSlot(PushSlot(0), reply, body, close_after);
}

// Behind the highest completed slot if it still waits (its frame and the
// ones pushed after it leave together), else straight into the output:
// every complete reply is there already.
void Connection::Push(std::string_view frame_bytes) {
  if (ready_end_ > front_serial_) {
    slots_[ready_end_ - 1 - front_serial_].frame.append(frame_bytes);
  } else {
    out_.append(frame_bytes);
  }
  MarkDirty();
  UpdateThrottle();
}

void Connection::CloseAfterReplies() {
  close_requested_ = true;
  UpdateReading();
}

// The front slots that are ready go to the output, in order.
void Connection::ReleaseReady() {
  while (!slots_.empty() && slots_.front().ready) {
    out_ += slots_.front().frame;
    if (slots_.front().close_after) close_requested_ = true;
    slots_.pop_front();
    ++front_serial_;
  }
}

void Connection::MarkDirty() {
  if (dirty_) return;
  dirty_ = true;
  set_.dirty_.push_back(id_);
}

uint64_t Connection::buffered_bytes() const {
  uint64_t n =
      decoder_.buffered_bytes() + pending_bytes_ + out_.size() + stream_->write_queue_bytes();
  for (const Slot& s : slots_) n += s.frame.size();
  return n;
}

// --- Connection: reading and bounds -------------------------------------------

void Connection::OnData(const char* data, size_t len) {
  Status st = decoder_.Feed(data, len,
                            [this](const pr::Frame& f) { return set_.owner_.OnFrame(*this, f); });
  if (!st.ok() && st.code() == Code::kProtocolError) set_.owner_.OnBadStream(*this, st.message());
  UpdateThrottle();
}

void Connection::OnEnd(const Status& why) {
  read_eof_ = true;
  if (!why.ok()) return set_.Close(id_);
  // A half-close: answer what was asked, then close.
  MaybeClose();
}

void Connection::UpdateReading() {
  bool want =
      !closed_ && !set_.owner_.ReadingBlocked() && !throttled_ && !read_eof_ && !close_requested_;
  if (want == stream_->reading()) return;
  if (!want) return stream_->StopReading();
  // Reading stops when the connection closes, so the stream never calls a
  // Connection that is gone.
  stream_->StartReading([this](const char* d, size_t n) { OnData(d, n); },
                        [this](const Status& why) { OnEnd(why); });
}

// A connection stops being read while it holds too much; it resumes at half.
void Connection::UpdateThrottle() {
  const Connection::Bounds& b = set_.bounds_;
  size_t unwritten_bytes = unwritten();
  if (!throttled_) {
    if (slots_.size() >= b.max_pending || pending_bytes_ >= b.max_pending_bytes ||
        unwritten_bytes >= b.max_write_bytes) {
      throttled_ = true;
      ++set_.pauses_;
    }
  } else if (slots_.size() <= b.max_pending / 2 && pending_bytes_ <= b.max_pending_bytes / 2 &&
             unwritten_bytes <= b.max_write_bytes / 2) {
    throttled_ = false;
  }
  UpdateReading();
}

// --- Connection: writing and closing ------------------------------------------

void Connection::Flush() {
  if (!out_.empty()) {
    // Straight to the socket when it takes everything (the usual case):
    // no write request, no extra epoll_ctl and loop turn (see
    // platform/stream_try_write.h).
    Result<size_t> sent = platform::TryWriteNow(*stream_, out_);
    if (!sent.ok()) return set_.Close(id_);
    if (*sent == out_.size()) {
      // Keep a small buffer for the next turn, not a large one per idle
      // connection.
      if (out_.capacity() > kKeepOutBytes) {
        std::string().swap(out_);
      } else {
        out_.clear();
      }
      UpdateThrottle();
      return MaybeClose();
    }
    out_.erase(0, *sent);
    ++writes_in_flight_;
    Status st = stream_->Write(std::move(out_),
                               [w = Connections::Weak(set_.self_), id = id_](const Status& s) {
                                 Connections* set = Connections::Lock(w);
                                 Connection* conn = set ? set->Find(id) : nullptr;
                                 if (conn) conn->OnWritten(s);
                               });
    out_.clear();
    if (!st.ok()) return set_.Close(id_);
  }
  MaybeClose();
}

void Connection::OnWritten(const Status& s) {
  --writes_in_flight_;
  if (!s.ok()) return set_.Close(id_);
  UpdateThrottle();
  MaybeClose();
}

void Connection::MaybeClose() {
  if (!read_eof_ && !close_requested_) return;
  // A close_after reply is queued last, so "nothing left" includes it; the
  // replies before it (publishes awaiting commit) are still answered.
  if (!slots_.empty() || !out_.empty() || writes_in_flight_ > 0) return;
  set_.Close(id_);
}

// --- Connections ------------------------------------------------------------

Connections::Connections(platform::Loop& loop, ConnectionOwner& owner, Connection::Bounds bounds,
                         uint64_t max_frame_body)
    : loop_(loop),
      owner_(owner),
      bounds_(bounds),
      max_frame_body_(max_frame_body),
      flush_(loop),
      self_(std::make_shared<Connections*>(this)) {}

Connections::~Connections() { *self_ = nullptr; }

void Connections::Start(std::function<void()> before_flush) {
  before_flush_ = std::move(before_flush);
  flush_.Start([this] { FlushAll(); });
}

Connection& Connections::Add(std::unique_ptr<platform::Stream> stream) {
  uint64_t id = NextId();
  auto conn = std::make_unique<Connection>(*this, id, std::move(stream));
  Connection& c = *conn;
  connections_.emplace(id, std::move(conn));
  c.UpdateReading();
  return c;
}

Connection* Connections::Find(uint64_t id) {
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : it->second.get();
}

void Connections::Close(uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = *it->second;
  owner_.OnClosing(c);
  c.closed_ = true;
  c.stream_->StopReading();
  std::unique_ptr<Connection> conn = std::move(it->second);
  connections_.erase(it);
  // The stream may be inside one of its own callbacks right now.
  loop_.DeferDelete(std::move(conn));
}

void Connections::UpdateReadingAll() {
  for (auto& [id, conn] : connections_) conn->UpdateReading();
}

uint64_t Connections::buffered_bytes() const {
  uint64_t n = 0;
  for (const auto& [id, c] : connections_) n += c->buffered_bytes();
  return n;
}

// Once per loop turn: one write per connection however many frames are ready.
void Connections::FlushAll() {
  if (before_flush_) before_flush_();
  if (dirty_.empty()) return;
  std::vector<uint64_t> ids;
  ids.swap(dirty_);
  for (uint64_t id : ids) {
    if (Connection* c = Find(id)) {
      c->dirty_ = false;
      c->Flush();
    }
  }
}

}  // namespace edgespool::agent::server
