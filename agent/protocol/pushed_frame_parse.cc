#include "agent/protocol/pushed_frame_parse.h"

#include <cmath>

namespace edgespool::protocol::pushed {

bool Fail(std::string* error, std::string why) {
  *error = std::move(why);
  return false;
}

bool GetInteger(const std::optional<JsonValue>& item, int64_t lo, int64_t hi, int64_t* out) {
  if (!item || !item->is_number()) return false;
  double d = item->number;
  if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(lo) ||
      d > static_cast<double>(hi)) {
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool ParseHeaderObject(const JsonValue& value, HeaderList* out) {
  if (value.type != JsonValue::Type::kObject || value.object == nullptr) return false;
  for (const cJSON* kv = value.object->child; kv != nullptr; kv = kv->next) {
    if (!cJSON_IsString(kv) || kv->valuestring == nullptr || kv->string == nullptr) return false;
    out->emplace_back(kv->string, kv->valuestring);
  }
  return true;
}

bool ParseTree(std::string_view header, const char* what, JsonPtr* root, std::string* error) {
  if (header.find('\0') != std::string_view::npos ||
      header.find("\\u0000") != std::string_view::npos) {
    return Fail(error, std::string("NUL in a ") + what + " header");
  }
  root->reset(cJSON_ParseWithLength(header.data(), header.size()));
  if (!*root || !cJSON_IsObject(root->get())) return Fail(error, "header is not a JSON object");
  return true;
}

}  // namespace edgespool::protocol::pushed
