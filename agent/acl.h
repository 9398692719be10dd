// Who may publish where: [[acl]] entries matched against the producer's
// SO_PEERCRED uid/gid.
//
//   [[acl]]
//   user = "sensors"          # or uid = 1001
//   group = "telemetry"       # or gid = 1002 (primary or supplementary)
//   publish = ["sensors/#", "site/+/temp"]
//
// An entry applies to a peer when every identity it names matches (an entry
// naming neither a user nor a group applies to everyone). A peer may publish
// on a topic when some entry that applies to it has a matching filter. With
// no entries at all, everyone may publish anywhere (the socket's mode is then
// the only gate).
//
// Thread-safety: immutable after Create(), except the group cache, which is
// loop-thread-only like its caller.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "platform/status.h"

namespace edgespool::agent {

struct AclEntry {
  std::optional<uint32_t> uid;
  std::string user;  // resolved to a uid by Acl::Create
  std::optional<uint32_t> gid;
  std::string group;  // resolved to a gid by Acl::Create
  std::vector<std::string> publish;  // MQTT filters
};

class Acl {
 public:
  // Resolves user and group names; an unknown name is a config error.
  static Result<Acl> Create(std::vector<AclEntry> entries);
  Acl() = default;

  bool empty() const { return entries_.empty(); }
  bool MayPublish(uint32_t uid, uint32_t gid, std::string_view topic);

 private:
  bool InGroup(uint32_t uid, uint32_t primary_gid, uint32_t gid);

  std::vector<AclEntry> entries_;
  // uid -> its groups, looked up once per uid (the user database is a file
  // read; a publish must not pay for it). Bounded by the number of uids.
  std::unordered_map<uint32_t, std::vector<uint32_t>> groups_cache_;
};

}  // namespace edgespool::agent
