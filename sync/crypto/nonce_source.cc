#include "sync/crypto/nonce_source.h"

#include "platform/files.h"

namespace edgespool::crypto {

namespace {

// The state file: one line, "edgespool-nonce-epoch N\n".
constexpr std::string_view kTag = "edgespool-nonce-epoch ";

Result<uint32_t> ParseEpoch(const std::string& text, const std::string& path) {
  std::string_view s = text;
  if (s.substr(0, kTag.size()) != kTag || s.empty() || s.back() != '\n') {
    return Status::Corruption(path + ": not a nonce state file; refusing to guess an epoch");
  }
  s.remove_prefix(kTag.size());
  s.remove_suffix(1);
  if (s.empty() || s.size() > 10) return Status::Corruption(path + ": bad epoch");
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return Status::Corruption(path + ": bad epoch");
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > UINT32_MAX) return Status::Corruption(path + ": bad epoch");
  return static_cast<uint32_t>(v);
}

}  // namespace

Result<std::unique_ptr<NonceSource>> NonceSource::Open(const std::string& state_path) {
  std::unique_ptr<NonceSource> s(new NonceSource(state_path));
  auto text = platform::ReadWholeFile(state_path);
  if (text.ok()) {
    auto epoch = ParseEpoch(*text, state_path);
    if (!epoch.ok()) return epoch.status();
    s->epoch_ = *epoch;
  } else if (text.status().code() != Code::kNotFound) {
    return text.status();
  }
  ES_RETURN_IF_ERROR(s->NewEpoch());
  return s;
}

Status NonceSource::NewEpoch() {
  if (epoch_ == UINT32_MAX) {
    return Status::ResourceExhausted(path_ + ": nonce epochs exhausted; use a new key file");
  }
  uint32_t next = epoch_ + 1;
  ES_RETURN_IF_ERROR(
      platform::WriteFileAtomic(path_, std::string(kTag) + std::to_string(next) + "\n")
          .Annotate("nonce state"));
  uint32_t r = 0;
  ES_RETURN_IF_ERROR(platform::RandomBytes(&r, sizeof r));
  epoch_ = next;
  random_ = r;
  counter_ = 0;
  return Status::Ok();
}

Status NonceSource::Next(Nonce* out) {
  if (counter_ > UINT32_MAX) ES_RETURN_IF_ERROR(NewEpoch());
  uint32_t words[3] = {epoch_, random_, static_cast<uint32_t>(counter_)};
  ++counter_;
  for (int w = 0; w < 3; ++w) {
    for (int b = 0; b < 4; ++b) {
      (*out)[static_cast<size_t>(w * 4 + b)] = static_cast<uint8_t>(words[w] >> (24 - 8 * b));
    }
  }
  return Status::Ok();
}

}  // namespace edgespool::crypto
