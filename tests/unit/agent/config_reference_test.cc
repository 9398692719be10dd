// edgespool.toml(5)'s source (agent/config/reference.h): every key of the
// schema, with its default, and documented by a comment in
// config.example.toml (so a key added without one fails here, not silently
// in the man page).
#include <gtest/gtest.h>

#include "agent/config/config.h"
#include "agent/config/reference.h"

namespace edgespool::agent {
namespace {

TEST(ConfigReferenceTest, EveryKeyIsDocumentedByTheExample) {
  size_t keys = 0;
  for (const SectionReference& s : ConfigReference()) {
    for (const KeyReference& k : s.keys) {
      ++keys;
      EXPECT_FALSE(k.doc.empty()) << s.name << "." << k.key
                                  << ": no comment above it (or after it) in config.example.toml";
      EXPECT_FALSE(k.kind.empty()) << s.name << "." << k.key;
    }
  }
  EXPECT_EQ(keys, KnownKeys().size());
}

TEST(ConfigReferenceTest, DefaultsRangesAndEnvironmentComeFromTheSchema) {
  const KeyReference* max_bytes = nullptr;
  const KeyReference* ca_dir = nullptr;
  const KeyReference* route_ttl = nullptr;
  const std::vector<SectionReference> reference = ConfigReference();
  for (const SectionReference& s : reference) {
    for (const KeyReference& k : s.keys) {
      if (s.name == "store" && k.key == "max_bytes") max_bytes = &k;
      if (s.name == "uplink" && k.key == "ca_dir") ca_dir = &k;
      if (s.name == "route" && k.key == "ttl") route_ttl = &k;
    }
    if (s.name == "route") {
      EXPECT_TRUE(s.is_array);
      EXPECT_NE(s.doc.find("the first whose `match`"), std::string::npos) << s.doc;
    }
  }
  ASSERT_NE(max_bytes, nullptr);
  EXPECT_EQ(max_bytes->default_value, "\"256MiB\"");
  EXPECT_EQ(max_bytes->kind, "size");
  EXPECT_EQ(max_bytes->range, "at least 1MiB");
  EXPECT_EQ(max_bytes->env, "EDGESPOOL_STORE_MAX_BYTES");
  EXPECT_EQ(max_bytes->doc.rfind("Cap on the journal file; keep it well clear", 0), 0u)
      << max_bytes->doc;
  ASSERT_NE(ca_dir, nullptr);  // shares the comment above ca_file
  EXPECT_EQ(ca_dir->shares_doc_with, "ca_file");
  EXPECT_NE(ca_dir->doc.find("CA certificates"), std::string::npos);
  ASSERT_NE(route_ttl, nullptr);  // commented out in the example; documented after its value
  EXPECT_EQ(route_ttl->doc.rfind("expiry when the producer gave none", 0), 0u) << route_ttl->doc;
  EXPECT_EQ(route_ttl->env, "");            // arrays are not in the environment
  EXPECT_EQ(route_ttl->default_value, "");  // not set unless given
}

}  // namespace
}  // namespace edgespool::agent
