#include "agent/encryption.h"

#include <algorithm>

namespace edgespool::agent {

Result<std::shared_ptr<const crypto::KeyRing>> MessageSealer::LoadKeys(
    const std::string& key_file) {
  auto ring = crypto::KeyRing::Load(key_file);
  if (!ring.ok()) {
    return Status::InvalidArgument("encryption.key_file: " + ring.status().message());
  }
  return std::make_shared<const crypto::KeyRing>(std::move(*ring));
}

Result<std::unique_ptr<MessageSealer>> MessageSealer::Open(const std::string& key_file,
                                                           const std::string& state_path,
                                                           std::string node) {
  auto keys = LoadKeys(key_file);
  if (!keys.ok()) return keys.status();
  auto nonces = crypto::NonceSource::Open(state_path);
  if (!nonces.ok()) return nonces.status().Annotate("encryption nonce state");
  return std::unique_ptr<MessageSealer>(
      new MessageSealer(std::move(*keys), std::move(*nonces), std::move(node)));
}

Status MessageSealer::Seal(store::Message& m) {
  crypto::Sealed sealed;
  const crypto::Key& key = cipher_.keys().current();
  sealed.key_id = key.id;
  ES_RETURN_IF_ERROR(nonces_->Next(&sealed.nonce));
  ES_RETURN_IF_ERROR(cipher_.Seal(
      key, sealed.nonce, crypto::AssociatedData(node_, m.topic, m.msg_id, m.ts_ms), &m.payload));
  StripSealHeader(&m.headers);
  m.headers.emplace_back(crypto::kEncHeader, crypto::FormatSealed(sealed));
  return Status::Ok();
}

void StripSealHeader(store::Headers* headers) {
  headers->erase(std::remove_if(headers->begin(), headers->end(),
                                [](const auto& h) { return h.first == crypto::kEncHeader; }),
                 headers->end());
}

}  // namespace edgespool::agent
