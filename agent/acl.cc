#include "agent/acl.h"

#include <algorithm>

#include "platform/files.h"
#include "platform/process_info.h"
#include "store/journal.h"

namespace edgespool::agent {

Result<Acl> Acl::Create(std::vector<AclEntry> entries) {
  Acl acl;
  for (AclEntry& e : entries) {
    if (!e.user.empty()) {
      auto uid = platform::LookupUid(e.user);
      if (!uid.ok()) return Status::InvalidArgument("acl: unknown user " + e.user);
      e.uid = static_cast<uint32_t>(*uid);
    }
    if (!e.group.empty()) {
      auto gid = platform::LookupGid(e.group);
      if (!gid.ok()) return Status::InvalidArgument("acl: unknown group " + e.group);
      e.gid = static_cast<uint32_t>(*gid);
    }
    if (e.publish.empty()) {
      return Status::InvalidArgument("acl: an entry needs at least one publish filter");
    }
    acl.entries_.push_back(std::move(e));
  }
  return acl;
}

bool Acl::InGroup(uint32_t uid, uint32_t primary_gid, uint32_t gid) {
  if (primary_gid == gid) return true;
  auto it = groups_cache_.find(uid);
  if (it == groups_cache_.end()) {
    it = groups_cache_.emplace(uid, platform::GroupsOfUid(uid)).first;
  }
  return std::find(it->second.begin(), it->second.end(), gid) != it->second.end();
}

bool Acl::MayPublish(uint32_t uid, uint32_t gid, std::string_view topic) {
  if (entries_.empty()) return true;
  for (const AclEntry& e : entries_) {
    if (e.uid && *e.uid != uid) continue;
    if (e.gid && !InGroup(uid, gid, *e.gid)) continue;
    for (const std::string& filter : e.publish) {
      if (store::TopicMatches(filter, topic)) return true;
    }
  }
  return false;
}

}  // namespace edgespool::agent
