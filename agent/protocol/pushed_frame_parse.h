// What the parsers of the frames the agent pushes to a connection share
// (message.cc: "message", call.cc: "call"): their fields are read from a
// FlatObject when the header is flat, else from a cJSON tree, with the same
// integer and header-object rules. Internal to agent/protocol.
#pragma once

#include <cjson/cJSON.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "agent/protocol/flat_json.h"
#include "agent/protocol/request.h"

namespace edgespool::protocol::pushed {

struct CjsonDeleter {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};
using JsonPtr = std::unique_ptr<cJSON, CjsonDeleter>;

// Sets *error, returns false: `return Fail(error, "...")`.
bool Fail(std::string* error, std::string why);

// An integer in [lo, hi] (a JSON number with no fraction).
bool GetInteger(const std::optional<JsonValue>& item, int64_t lo, int64_t hi, int64_t* out);

// {"k":"v",...} with string values only, in their order.
bool ParseHeaderObject(const JsonValue& value, HeaderList* out);

// Whether the header's "op" is `op`.
template <typename Src>
bool IsOp(const Src& root, std::string_view op) {
  auto item = root.Find("op");
  return item && item->is_string() && item->text == op;
}

// The cJSON path. cJSON strings end at a NUL, so a NUL (raw or escaped) would
// cut a field short unnoticed; the agent never sends one, so it is refused
// ("NUL in a <what> header").
bool ParseTree(std::string_view header, const char* what, JsonPtr* root, std::string* error);

}  // namespace edgespool::protocol::pushed
