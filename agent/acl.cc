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
    if (e.publish.empty() && e.subscribe.empty() && e.respond.empty()) {
      return Status::InvalidArgument(
          "acl: an entry needs at least one publish, subscribe or respond filter");
    }
    acl.names_publish_ |= !e.publish.empty();
    acl.names_subscribe_ |= !e.subscribe.empty();
    acl.names_respond_ |= !e.respond.empty();
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

bool Acl::Applies(const AclEntry& e, uint32_t uid, uint32_t gid) {
  if (e.uid && *e.uid != uid) return false;
  return !e.gid || InGroup(uid, gid, *e.gid);
}

template <typename Fits>
bool Acl::Allowed(std::vector<std::string> AclEntry::*list, bool named, uint32_t uid,
                  uint32_t gid, Fits fits) {
  if (!named) return true;
  for (const AclEntry& e : entries_) {
    if ((e.*list).empty() || !Applies(e, uid, gid)) continue;
    for (const std::string& filter : e.*list) {
      if (fits(filter)) return true;
    }
  }
  return false;
}

bool Acl::MayPublish(uint32_t uid, uint32_t gid, std::string_view topic) {
  return Allowed(&AclEntry::publish, names_publish_, uid, gid,
                 [&](const std::string& f) { return store::TopicMatches(f, topic); });
}

bool Acl::MaySubscribe(uint32_t uid, uint32_t gid, std::string_view filter) {
  return Allowed(&AclEntry::subscribe, names_subscribe_, uid, gid,
                 [&](const std::string& f) { return FilterWithin(f, filter); });
}

bool Acl::MayRespond(uint32_t uid, uint32_t gid, std::string_view method) {
  return Allowed(&AclEntry::respond, names_respond_, uid, gid,
                 [&](const std::string& f) { return store::TopicMatches(f, method); });
}

namespace {

// The next '/'-separated level of *s, consumed; nullopt past the last one.
std::optional<std::string_view> NextLevel(std::string_view* s, bool* done) {
  if (*done) return std::nullopt;
  size_t slash = s->find('/');
  std::string_view level = s->substr(0, slash);
  if (slash == std::string_view::npos) {
    *done = true;
  } else {
    s->remove_prefix(slash + 1);
  }
  return level;
}

}  // namespace

bool FilterWithin(std::string_view allowed, std::string_view filter) {
  bool a_done = false, f_done = false;
  for (;;) {
    auto a = NextLevel(&allowed, &a_done);
    auto f = NextLevel(&filter, &f_done);
    if (!a) return !f;  // both ended together; or the filter reaches deeper
    if (*a == "#") return true;  // also covers the parent level ("a/#" and "a")
    if (!f || *f == "#") return false;
    if (*a != "+" && *a != *f) return false;  // a literal allows only itself
  }
}

}  // namespace edgespool::agent
