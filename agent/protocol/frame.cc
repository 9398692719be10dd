#include "agent/protocol/frame.h"

#include <algorithm>

namespace edgespool::protocol {

namespace {

void PutU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
               static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(b, 4);
}

// A buffer that grew for one large frame is given back once the frame is
// done, so that 10,000 idle connections do not each keep megabytes.
constexpr size_t kKeepBufferBytes = 16 * 1024;

}  // namespace

void AppendFrame(std::string* out, std::string_view header, std::string_view body) {
  out->reserve(out->size() + kPrefixBytes + header.size() + body.size());
  PutU32(out, static_cast<uint32_t>(header.size()));
  PutU32(out, static_cast<uint32_t>(body.size()));
  out->append(header.data(), header.size());
  out->append(body.data(), body.size());
}

size_t BeginFrame(std::string* out) {
  size_t start = out->size();
  out->append(kPrefixBytes, '\0');
  return start;
}

void EndFrame(std::string* out, size_t start, std::string_view body) {
  size_t header_len = out->size() - start - kPrefixBytes;
  out->append(body.data(), body.size());
  char* p = out->data() + start;
  auto put = [](char* at, uint32_t v) {
    at[0] = static_cast<char>(v >> 24);
    at[1] = static_cast<char>(v >> 16);
    at[2] = static_cast<char>(v >> 8);
    at[3] = static_cast<char>(v);
  };
  put(p, static_cast<uint32_t>(header_len));
  put(p + 4, static_cast<uint32_t>(body.size()));
}

std::string EncodeFrame(std::string_view header, std::string_view body) {
  std::string out;
  AppendFrame(&out, header, body);
  return out;
}

FrameDecoder::Prefix FrameDecoder::ReadPrefix(const char* p) {
  auto u = [p](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
  return Prefix{(u(0) << 24) | (u(1) << 16) | (u(2) << 8) | u(3),
                (u(4) << 24) | (u(5) << 16) | (u(6) << 8) | u(7)};
}

Status FrameDecoder::CheckPrefix(const Prefix& prefix) {
  if (prefix.header_len == 0 || prefix.header_len > kMaxHeaderBytes) {
    failed_ = true;
    return Status::ProtocolError("bad frame: header_len " + std::to_string(prefix.header_len) +
                                 " not in 1.." + std::to_string(kMaxHeaderBytes));
  }
  if (prefix.body_len > max_skip_bytes_) {
    failed_ = true;
    return Status::ProtocolError("bad frame: body_len " + std::to_string(prefix.body_len) +
                                 " exceeds " + std::to_string(max_skip_bytes_));
  }
  return Status::Ok();
}

size_t FrameDecoder::NeededBytes(const Prefix& prefix) const {
  size_t n = kPrefixBytes + prefix.header_len;
  if (prefix.body_len <= max_body_bytes_) n += prefix.body_len;
  return n;
}

Frame FrameDecoder::MakeFrame(const char* frame, const Prefix& prefix) {
  Frame f;
  f.header = std::string_view(frame + kPrefixBytes, prefix.header_len);
  f.declared_body_bytes = prefix.body_len;
  if (prefix.body_len > max_body_bytes_) {
    f.body_skipped = true;
    skip_remaining_ = prefix.body_len;
  } else {
    f.body = std::string_view(frame + kPrefixBytes + prefix.header_len, prefix.body_len);
  }
  return f;
}

void FrameDecoder::ReleaseBuffer() {
  if (buffer_.capacity() > kKeepBufferBytes) {
    std::string().swap(buffer_);
  } else {
    buffer_.clear();
  }
}

Status FrameDecoder::Feed(const char* data, size_t len, const FrameCallback& on_frame) {
  if (failed_) return Status::ProtocolError("bad frame: decoder already failed");
  while (len > 0) {
    if (skip_remaining_ > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(skip_remaining_, len));
      skip_remaining_ -= n;
      data += n;
      len -= n;
      continue;
    }
    if (buffer_.empty() && len >= kPrefixBytes) {
      // Fast path: a whole frame in the input, handed out without a copy.
      Prefix prefix = ReadPrefix(data);
      ES_RETURN_IF_ERROR(CheckPrefix(prefix));
      size_t need = NeededBytes(prefix);
      if (len >= need) {
        Frame f = MakeFrame(data, prefix);
        data += need;
        len -= need;
        if (!on_frame(f)) {
          failed_ = true;
          return Status::Cancelled("decoding stopped by the receiver");
        }
        continue;
      }
    }
    // Slow path: assemble in buffer_. First the prefix, then the rest.
    size_t target = kPrefixBytes;
    Prefix prefix{0, 0};
    if (buffer_.size() >= kPrefixBytes) {
      prefix = ReadPrefix(buffer_.data());
      target = NeededBytes(prefix);
    }
    size_t n = std::min(len, target - buffer_.size());
    buffer_.append(data, n);
    data += n;
    len -= n;
    if (buffer_.size() == kPrefixBytes && target == kPrefixBytes) {
      prefix = ReadPrefix(buffer_.data());
      ES_RETURN_IF_ERROR(CheckPrefix(prefix));
      target = NeededBytes(prefix);
      buffer_.reserve(target);
    }
    if (buffer_.size() == target && target > kPrefixBytes) {
      Frame f = MakeFrame(buffer_.data(), prefix);
      bool go_on = on_frame(f);
      ReleaseBuffer();
      if (!go_on) {
        failed_ = true;
        return Status::Cancelled("decoding stopped by the receiver");
      }
    }
  }
  return Status::Ok();
}

}  // namespace edgespool::protocol
