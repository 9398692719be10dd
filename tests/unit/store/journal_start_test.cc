// What open no longer reads in full on a big journal (issue 19): the
// backlog's count comes from the clean-close counts file when it matches,
// and is counted again when it does not; the dedupe set of a backlog stored
// inside the window, mostly without ids, is rebuilt without reading every
// row, and still finds an older id.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>
#include <vector>

#include "platform/files.h"
#include "store/journal.h"
#include "store/journal_db.h"
#include "tests/unit/store/journal_test_util.h"

namespace edgespool::store {
namespace {

using testutil::Harness;
using testutil::Msg;

void Exec(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

TEST(JournalStartTest, CleanCloseCountsAreUsedOnlyWhenTheyMatch) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  std::vector<Message> msgs;
  for (int i = 0; i < 500; ++i) msgs.push_back(Msg("t", i, std::string(100, 'x')));
  auto r = h.AppendMany(std::move(msgs));
  ASSERT_TRUE(r[0].ok());
  ASSERT_TRUE(h.MarkSent({r[0]->seq, r[1]->seq}).ok());
  EXPECT_EQ(h.j().stats().pending_count, 498u);
  h.Close();
  const std::string path = h.options().path;
  const std::string counts = JournalDb::CountsPath(path);
  ASSERT_TRUE(platform::FileExists(counts));

  // Matching: taken as they are, and consumed.
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.j().stats().pending_count, 498u);
  EXPECT_EQ(h.j().stats().pending_bytes, 498u * 100);
  EXPECT_FALSE(platform::FileExists(counts));
  h.Close();

  // The journal changed behind the file's back (another tool, or a file
  // from another journal): the head seq no longer matches, so it counts.
  ASSERT_TRUE(platform::FileExists(counts));
  Exec(path,
       "INSERT INTO journal(ts, topic, priority, payload, stored_at) VALUES(1, 't', 1, 'y', 1);"
       "INSERT INTO pending SELECT seq, priority, ts, 1 FROM journal WHERE seq = "
       "(SELECT max(seq) FROM journal);");
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.j().stats().pending_count, 499u);
  EXPECT_EQ(h.j().stats().pending_bytes, 498u * 100 + 1);
  EXPECT_FALSE(platform::FileExists(counts));
  h.Close();

  // Wrong numbers with the right keys would be believed: that is why the
  // file is removed at open (a crash leaves none) and written only by a
  // clean close. A garbled one is ignored.
  ASSERT_TRUE(platform::WriteFileAtomic(counts, "edgespool-counts 1 nonsense\n").ok());
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.j().stats().pending_count, 499u);
}

TEST(JournalStartTest, DedupeFindsAnOlderIdBehindManyRowsWithoutIds) {
  JournalOptions o;
  o.dedupe_max_ids = 1000;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  auto first = h.Append(Msg("t", 1, "p", Priority::kNormal, "the-old-id"));
  ASSERT_TRUE(first.ok());
  // More rows without an id than the scan by seq reads, all in the window.
  const int n = static_cast<int>(JournalDb::kDedupeScanRows) + 5000;
  for (int done = 0; done < n;) {
    std::vector<Message> msgs;
    for (int k = 0; k < 20000 && done < n; ++k, ++done) msgs.push_back(Msg("t", 2, "p"));
    for (auto& r : h.AppendMany(std::move(msgs))) ASSERT_TRUE(r.ok());
  }
  h.Close();
  ASSERT_TRUE(h.Open().ok());
  auto again = h.Append(Msg("t", 3, "p", Priority::kNormal, "the-old-id"));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->seq, first->seq);
}

}  // namespace
}  // namespace edgespool::store
