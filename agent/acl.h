// Who may do what on the producer socket: [[acl]] entries matched against
// the peer's SO_PEERCRED uid/gid.
//
//   [[acl]]
//   user = "sensors"          # or uid = 1001
//   group = "telemetry"       # or gid = 1002 (primary or supplementary)
//   publish = ["sensors/#", "site/+/temp"]   # topics it may publish (and request) on
//   subscribe = ["cmd/hmi/#"]                # downlink filters it may subscribe within
//   respond = ["reboot", "config/#"]         # methods it may answer
//
// An entry applies to a peer when every identity it names matches (an entry
// naming neither a user nor a group applies to everyone). Each right
// (publish, subscribe, respond) is restricted only once some entry names it:
// then a peer has it when an entry that applies to it has a matching filter.
// A right no entry names is open to everyone who can open the socket (its
// mode is then the only gate), so a config written before subscribe and
// respond existed keeps working. A subscription's filter must lie within an
// allowed filter (every topic it can match, the allowed one matches too):
// "cmd/hmi/#" allows "cmd/hmi/+/x", not "cmd/#".
//
// Thread-safety: immutable after Create(), except the group cache, which is
// loop-thread-only like its caller.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
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
  std::vector<std::string> publish;    // MQTT filters over topics
  std::vector<std::string> subscribe;  // MQTT filters over downlink topics
  std::vector<std::string> respond;    // MQTT filters over method names
};

// True when every topic `filter` matches is also matched by `allowed` (both
// valid MQTT filters).
bool FilterWithin(std::string_view allowed, std::string_view filter);

class Acl {
 public:
  // Resolves user and group names; an unknown name is a config error.
  static Result<Acl> Create(std::vector<AclEntry> entries);
  Acl() = default;

  bool empty() const { return entries_.empty(); }
  bool MayPublish(uint32_t uid, uint32_t gid, std::string_view topic);
  bool MaySubscribe(uint32_t uid, uint32_t gid, std::string_view filter);
  bool MayRespond(uint32_t uid, uint32_t gid, std::string_view method);

 private:
  bool InGroup(uint32_t uid, uint32_t primary_gid, uint32_t gid);
  bool Applies(const AclEntry& e, uint32_t uid, uint32_t gid);
  // The right held in `list`, with `fits(filter)` for one of its filters.
  template <typename Fits>
  bool Allowed(std::vector<std::string> AclEntry::*list, bool named, uint32_t uid, uint32_t gid,
               Fits fits);

  std::vector<AclEntry> entries_;
  bool names_publish_ = false, names_subscribe_ = false, names_respond_ = false;
  // uid -> its groups, looked up once per uid (the user database is a file
  // read; a publish must not pay for it). Bounded by the number of uids.
  std::unordered_map<uint32_t, std::vector<uint32_t>> groups_cache_;
};

}  // namespace edgespool::agent
