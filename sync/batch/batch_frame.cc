#include "sync/batch/batch_frame.h"

#include <zstd.h>

#include <cassert>
#include <cstring>

namespace edgespool::batch {

namespace {

void PutU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}
void PutU32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>(v >> s));
}
void PutU64(std::string& out, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>(v >> s));
}
// Lengths beyond the field's range are clipped by the caller's validation
// (topics <= 65535 bytes, payloads <= max_message_bytes): assert the contract.
void PutStr16(std::string& out, std::string_view s) {
  PutU16(out, static_cast<uint16_t>(s.size() > 0xFFFF ? 0xFFFF : s.size()));
  out.append(s.data(), s.size() > 0xFFFF ? 0xFFFF : s.size());
}
void PutStr32(std::string& out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// A bounds-checked reader over a byte range.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool U8(uint8_t* v) { return Fixed(1, [&](const unsigned char* p) { *v = p[0]; }); }
  bool U16(uint16_t* v) {
    return Fixed(2, [&](const unsigned char* p) { *v = static_cast<uint16_t>(p[0] << 8 | p[1]); });
  }
  bool U32(uint32_t* v) {
    return Fixed(4, [&](const unsigned char* p) {
      *v = uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
    });
  }
  bool U64(uint64_t* v) {
    return Fixed(8, [&](const unsigned char* p) {
      uint64_t x = 0;
      for (int i = 0; i < 8; ++i) x = x << 8 | p[i];
      *v = x;
    });
  }
  bool Bytes(size_t n, std::string* out) {
    if (b_.size() - pos_ < n) return false;
    out->assign(b_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool Str16(std::string* out) {
    uint16_t n;
    return U16(&n) && Bytes(n, out);
  }
  bool Str32(std::string* out) {
    uint32_t n;
    return U32(&n) && Bytes(n, out);
  }
  size_t remaining() const { return b_.size() - pos_; }
  std::string_view rest() const { return b_.substr(pos_); }

 private:
  template <typename F>
  bool Fixed(size_t n, F f) {
    if (b_.size() - pos_ < n) return false;
    f(reinterpret_cast<const unsigned char*>(b_.data() + pos_));
    pos_ += n;
    return true;
  }
  std::string_view b_;
  size_t pos_ = 0;
};

}  // namespace

struct FrameEncoder::ZstdContext {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ~ZstdContext() { ZSTD_freeCCtx(cctx); }
};

FrameEncoder::FrameEncoder(std::string node, Codec codec, int zstd_level)
    : node_(std::move(node)), codec_(codec), level_(zstd_level) {
  if (codec_ == Codec::kZstd) zstd_ = std::make_unique<ZstdContext>();
}

FrameEncoder::~FrameEncoder() = default;

void FrameEncoder::Add(uint64_t seq, int64_t ts_ms, std::string_view topic, std::string_view id,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       std::string_view payload, const RecordSeal* seal) {
  assert(CanAdd(seal != nullptr) && "flush the frame before the first sealed record");
  if (count_ == 0) {
    first_seq_ = seq;
    seal_fields_ = seal != nullptr;
  }
  ++count_;
  PutU64(body_, seq);
  PutU64(body_, static_cast<uint64_t>(ts_ms));
  PutStr16(body_, topic);
  PutStr16(body_, id);
  size_t n = headers.size() > 0xFFFF ? 0xFFFF : headers.size();
  PutU16(body_, static_cast<uint16_t>(n));
  for (size_t i = 0; i < n; ++i) {
    PutStr16(body_, headers[i].first);
    PutStr32(body_, headers[i].second);
  }
  if (seal_fields_) {
    if (seal) {
      body_.push_back(static_cast<char>(kSealAesGcm));
      PutStr16(body_, seal->key_id);
      body_.append(reinterpret_cast<const char*>(seal->nonce.data()), seal->nonce.size());
    } else {
      body_.push_back(0);
    }
  }
  PutStr32(body_, payload);
}

Result<std::string> FrameEncoder::Finish() {
  if (count_ == 0) return Status::InvalidArgument("batch frame with no records");
  if (body_.size() > UINT32_MAX) return Status::InvalidArgument("batch body over 4 GiB");
  std::string out;
  out.reserve(32 + node_.size() + (codec_ == Codec::kZstd ? ZSTD_compressBound(body_.size())
                                                            : body_.size()));
  out.append(kMagic, 4);
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(codec_));
  PutU16(out, seal_fields_ ? kFlagSealFields : 0);
  PutStr16(out, node_);
  PutU64(out, first_seq_);
  PutU32(out, count_);
  PutU32(out, static_cast<uint32_t>(body_.size()));
  if (codec_ == Codec::kZstd) {
    size_t head = out.size();
    out.resize(head + ZSTD_compressBound(body_.size()));
    // A frame with sealed records is mostly ciphertext, which no level
    // compresses: the fastest level still shrinks the framing around it
    // (seqs, topics, ids), at a fraction of the CPU of a higher one.
    int level = seal_fields_ ? 1 : level_;
    size_t n = ZSTD_compressCCtx(zstd_->cctx, out.data() + head, out.size() - head, body_.data(),
                                 body_.size(), level);
    if (ZSTD_isError(n)) {
      return Status::Internal(std::string("zstd compress: ") + ZSTD_getErrorName(n));
    }
    out.resize(head + n);
  } else {
    out += body_;
  }
  body_.clear();
  count_ = 0;
  seal_fields_ = false;
  return out;
}

Result<size_t> FrameLength(std::string_view bytes) {
  if (!LooksLikeFrame(bytes)) return Status::Corruption("batch frame: bad magic");
  Reader r(bytes.substr(4));
  uint8_t version, codec;
  uint16_t flags;
  std::string node;
  uint64_t first_seq;
  uint32_t count, body_len;
  if (!r.U8(&version) || !r.U8(&codec) || !r.U16(&flags) || !r.Str16(&node) ||
      !r.U64(&first_seq) || !r.U32(&count) || !r.U32(&body_len)) {
    return Status::Corruption("batch frame: truncated header");
  }
  size_t head = bytes.size() - r.remaining();
  if (codec == static_cast<uint8_t>(Codec::kZstd)) {
    size_t n = ZSTD_findFrameCompressedSize(bytes.data() + head, r.remaining());
    if (ZSTD_isError(n)) return Status::Corruption("batch frame: incomplete zstd body");
    return head + n;
  }
  if (r.remaining() < body_len) return Status::Corruption("batch frame: truncated body");
  return head + body_len;
}

bool LooksLikeFrame(std::string_view bytes) {
  return bytes.size() >= 4 && std::memcmp(bytes.data(), kMagic, 4) == 0;
}

namespace {

// The body as records are read from it: *body itself (none), or inflated
// into *inflated (zstd), which *body then views. Either way body_len long.
Status InflateBody(Codec codec, uint32_t body_len, std::string_view* body,
                   std::string* inflated) {
  if (codec != Codec::kZstd) {
    if (body->size() != body_len) {
      return Status::Corruption("batch frame: body length does not match body_len");
    }
    return Status::Ok();
  }
  unsigned long long declared = ZSTD_getFrameContentSize(body->data(), body->size());
  if (declared == ZSTD_CONTENTSIZE_ERROR || declared != body_len) {
    return Status::Corruption("batch frame: zstd content size does not match body_len");
  }
  inflated->resize(body_len);
  size_t n = ZSTD_decompress(inflated->data(), inflated->size(), body->data(), body->size());
  if (ZSTD_isError(n)) {
    return Status::Corruption(std::string("batch frame: zstd: ") + ZSTD_getErrorName(n));
  }
  if (n != body_len) return Status::Corruption("batch frame: short zstd body");
  *body = *inflated;
  return Status::Ok();
}

// Record i, without the seq order check (that needs its neighbour).
Status ReadRecord(Reader& br, uint32_t i, bool seal_fields, Record* rec) {
  uint64_t ts;
  uint16_t nh;
  if (!br.U64(&rec->seq) || !br.U64(&ts) || !br.Str16(&rec->topic) || !br.Str16(&rec->id) ||
      !br.U16(&nh)) {
    return Status::Corruption("batch frame: truncated record " + std::to_string(i));
  }
  rec->ts_ms = static_cast<int64_t>(ts);
  for (uint16_t h = 0; h < nh; ++h) {
    std::string k, v;
    if (!br.Str16(&k) || !br.Str32(&v)) {
      return Status::Corruption("batch frame: truncated header in record " + std::to_string(i));
    }
    rec->headers.emplace_back(std::move(k), std::move(v));
  }
  if (seal_fields) {
    uint8_t alg;
    if (!br.U8(&alg))
      return Status::Corruption("batch frame: truncated seal in record " + std::to_string(i));
    if (alg == kSealAesGcm) {
      RecordSeal seal;
      std::string nonce;
      if (!br.Str16(&seal.key_id) || !br.Bytes(kSealNonceBytes, &nonce)) {
        return Status::Corruption("batch frame: truncated seal in record " + std::to_string(i));
      }
      if (seal.key_id.empty()) {
        return Status::Corruption("batch frame: empty key id in record " + std::to_string(i));
      }
      std::memcpy(seal.nonce.data(), nonce.data(), kSealNonceBytes);
      rec->seal = std::move(seal);
    } else if (alg != 0) {
      return Status::Corruption("batch frame: unknown seal algorithm " + std::to_string(alg) +
                                " in record " + std::to_string(i));
    }
  }
  if (!br.Str32(&rec->payload)) {
    return Status::Corruption("batch frame: truncated payload in record " + std::to_string(i));
  }
  return Status::Ok();
}

}  // namespace

Result<Frame> DecodeFrame(std::string_view bytes, const DecodeLimits& limits) {
  if (!LooksLikeFrame(bytes)) return Status::Corruption("batch frame: bad magic");
  Reader r(bytes.substr(4));
  uint8_t version, codec;
  uint16_t flags;
  Frame frame;
  uint32_t count, body_len;
  if (!r.U8(&version) || !r.U8(&codec) || !r.U16(&flags) || !r.Str16(&frame.node) ||
      !r.U64(&frame.first_seq) || !r.U32(&count) || !r.U32(&body_len)) {
    return Status::Corruption("batch frame: truncated header");
  }
  if (version != kVersion) {
    return Status::Corruption("batch frame: unsupported version " + std::to_string(version));
  }
  if (codec > static_cast<uint8_t>(Codec::kZstd)) {
    return Status::Corruption("batch frame: unknown codec " + std::to_string(codec));
  }
  if ((flags & ~kFlagSealFields) != 0) return Status::Corruption("batch frame: unknown flags");
  if (count == 0 || count > limits.max_records) {
    return Status::Corruption("batch frame: bad record count " + std::to_string(count));
  }
  if (body_len > limits.max_body_bytes) {
    return Status::Corruption("batch frame: body of " + std::to_string(body_len) +
                              " bytes over the limit");
  }
  frame.codec = static_cast<Codec>(codec);
  std::string inflated;
  std::string_view body = r.rest();
  Status st = InflateBody(frame.codec, body_len, &body, &inflated);
  if (!st.ok()) return st;
  Reader br(body);
  // Each record takes at least 30 bytes: don't reserve on a lying count.
  frame.records.reserve(std::min<size_t>(count, body.size() / 30 + 1));
  uint64_t prev_seq = 0;
  for (uint32_t i = 0; i < count; ++i) {
    Record rec;
    st = ReadRecord(br, i, (flags & kFlagSealFields) != 0, &rec);
    if (!st.ok()) return st;
    if (i == 0 ? rec.seq != frame.first_seq : rec.seq <= prev_seq) {
      return Status::Corruption("batch frame: seqs out of order at record " + std::to_string(i));
    }
    prev_seq = rec.seq;
    frame.records.push_back(std::move(rec));
  }
  if (br.remaining() != 0) return Status::Corruption("batch frame: trailing bytes after records");
  return frame;
}

}  // namespace edgespool::batch
