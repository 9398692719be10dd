// Power loss under producer load: the harness shared by
// journal_power_loss_test (the default run) and
// tests/fault/journal_power_loss_slow_test (1,000 rounds per level).
//
// The journal's file calls go through PowerLossVfs (power_loss_vfs.h). Each
// round, on one journal file kept across rounds:
//   1. the power is set to go after a random number of mutating file calls
//      (1..kMaxCutCalls), counted from before Open: a few rounds lose it
//      while the journal is being created;
//   2. the journal opens (it must, unless the power went during the open),
//      nothing is moved aside as corrupt, and every message acknowledged in
//      an earlier round and not delivered since is in it (else: lost);
//   3. producers append (kProducers x kWindow in flight) while an uplink
//      stand-in fetches rows and marks them sent, until the power goes (or a
//      bound is reached: then it goes at once, with the journal idle);
//   4. the journal is destroyed, the disk keeps what the round's CutModel
//      lets it keep (PowerLossVfs::Reboot), and a copy of the files must
//      pass PRAGMA integrity_check.
// Counted as a queue checker counts (TESTING.md): lost = acknowledged,
// never delivered, and gone after a reboot; duplicated = delivered more than
// once (a MarkSent lost with the power); recovered = never acknowledged (the
// ack died with the power) yet found after the reboot. A recovered row
// counts as stored from then on: a later round must not lose it either.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "platform/log.h"
#include "platform/loop.h"
#include "store/journal.h"
#include "store/schema.h"
#include "tests/support/test_env.h"
#include "tests/unit/store/power_loss_vfs.h"

namespace edgespool::store::powertest {

inline constexpr int kProducers = 3;
inline constexpr int kWindow = 16;
// Two writes per WAL frame and a sync per commit, a write per page and two
// syncs per checkpoint pass: 1..900 calls puts the cut anywhere from the
// journal's creation to ~1,000 appends in (measured: ~530 acked per round
// on average at full).
inline constexpr uint64_t kMaxCutCalls = 900;
inline constexpr uint64_t kMaxAppendsPerRound = 20000;
inline constexpr auto kMaxLoadTime = std::chrono::seconds(2);

struct Totals {
  int rounds = 0;
  int cut_in_open = 0;     // the power went while the journal opened
  int cut_in_close = 0;    // ... while a clean shutdown closed it
  int cut_under_load = 0;  // ... while producers appended
  int cut_idle = 0;        // ... after the round's bound, journal idle
  uint64_t acked = 0;
  uint64_t acked_after_cut = 0;  // commit synced before the cut, ack ran after
  uint64_t delivered = 0;
  uint64_t duplicated = 0;
  uint64_t recovered = 0;
  uint64_t lost = 0;
  uint64_t most_lost_in_a_round = 0;
  uint64_t stored_twice = 0;  // one id in two rows: never expected
  uint64_t open_failures = 0;
  uint64_t corrupt_moved = 0;
  uint64_t integrity_failures = 0;
  int clean_restarts = 0;
  std::map<std::string, int> cut_calls;  // PowerLossVfs::cut_call() -> rounds
  powerloss::RebootReport disk;
};

inline std::string PayloadFor(uint64_t id, std::mt19937& rng) {
  std::string p = "pl-" + std::to_string(id) + "-";
  size_t size = 40 + rng() % 400;
  while (p.size() < size) p += static_cast<char>('a' + (id + p.size()) % 26);
  return p;
}

inline uint64_t IdOf(const std::string& payload) {
  return std::strtoull(payload.c_str() + 3, nullptr, 10);
}

// PRAGMA integrity_check on the files as the reboot left them, over a
// connection of the default VFS that must not change them: no checkpoint on
// close (which would also delete the WAL); the -shm it makes is removed
// (the journal's VFS keeps its WAL index in memory). A hot rollback journal
// is rolled back, as the journal's own open would.
inline std::string IntegrityCheck(const std::string& path) {
  sqlite3* db = nullptr;
  std::string result = "cannot open";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) ==
      SQLITE_OK) {
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      result = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    } else {
      result = sqlite3_errmsg(db);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  unlink((path + "-shm").c_str());
  return result;
}

// What every run must show, whatever the durability level.
inline void ExpectOpensEveryTime(const Totals& t) {
  EXPECT_EQ(t.open_failures, 0u) << "the journal failed to open with the power on";
  EXPECT_EQ(t.corrupt_moved, 0u) << "a journal was moved aside as corrupt";
  EXPECT_EQ(t.integrity_failures, 0u);
  EXPECT_EQ(t.stored_twice, 0u);
}

// The run exercised what it claims to: load, and a disk that lost things.
inline void ExpectTheDiskBit(const Totals& t) {
  EXPECT_GT(t.acked, 1000u);
  EXPECT_GT(t.cut_under_load, t.rounds / 2);
  EXPECT_GT(t.disk.unsynced_ops, t.disk.kept_ops) << "nothing unsynced was ever dropped";
  EXPECT_GT(t.disk.kept_ops, 0u);
  EXPECT_GT(t.disk.torn_writes, 0u);
}

class PowerLossRounds {
 public:
  PowerLossRounds(Durability durability, uint32_t seed) : durability_(durability), rng_(seed) {
    vfs_ = powerloss::PowerLossVfs::Install(kJournalVfs, kJournalVfs);
    path_ = dir_.File("journal.db");
  }
  ~PowerLossRounds() { vfs_.reset(); }

  const Totals& Run(int rounds) {
    EXPECT_NE(vfs_, nullptr) << "cannot install the power-loss VFS";
    if (!vfs_) return totals_;
    // The journal logs every failed commit after the cut; the counts below
    // say what happened.
    platform::Logger::SetLevel(platform::LogLevel::kOff);
    for (int r = 0; r < rounds && !::testing::Test::HasFatalFailure(); ++r) Round(r);
    platform::Logger::SetLevel(platform::LogLevel::kInfo);
    return totals_;
  }

  void Print(const char* label) const {
    const Totals& t = totals_;
    std::printf(
        "power loss (%s): %d rounds (cut in open %d, in a clean close %d, under load %d, idle %d); "
        "acked %" PRIu64 " (%" PRIu64 " acks ran after the cut), delivered %" PRIu64
        "; lost %" PRIu64 " (at most %" PRIu64 " in a round), duplicated %" PRIu64
        ", recovered %" PRIu64 ", stored twice %" PRIu64 "; open failures %" PRIu64
        ", moved aside %" PRIu64 ", integrity failures %" PRIu64 "; disk: %" PRIu64
        " unsynced ops at the cuts, %" PRIu64 " kept, %" PRIu64 " torn; %" PRIu64
        " unsynced directory changes, %" PRIu64 " undone\n",
        label, t.rounds, t.cut_in_open, t.cut_in_close, t.cut_under_load, t.cut_idle, t.acked,
        t.acked_after_cut, t.delivered, t.lost, t.most_lost_in_a_round, t.duplicated, t.recovered,
        t.stored_twice, t.open_failures, t.corrupt_moved, t.integrity_failures, t.disk.unsynced_ops,
        t.disk.kept_ops, t.disk.torn_writes, t.disk.dir_changes, t.disk.dir_reverted);
    std::printf("  %d clean restarts; the power went before:", t.clean_restarts);
    for (const auto& [call, n] : t.cut_calls) std::printf(" %s %d,", call.c_str(), n);
    std::printf("\n");
  }

 private:
  enum : uint8_t { kAcked = 1, kDelivered = 2, kRecovered = 4 };

  JournalOptions Options() const {
    JournalOptions o;
    o.path = path_;
    o.durability = durability_;
    // A small cap makes a small WAL budget: checkpoint passes every ~128
    // frames, so cuts land inside checkpoints and WAL restarts too. Cleanup
    // (incremental vacuum, WAL truncation) runs every 50 ms.
    o.max_bytes = 4u << 20;
    o.cleanup_interval_ms = 50;
    return o;
  }

  powerloss::CutModel NextModel() {
    powerloss::CutModel m;
    switch (rng_() % 4) {
      case 0:
        m.loss = powerloss::Loss::kDropAll;
        break;
      case 1:
        m.loss = powerloss::Loss::kKeepPrefix;
        break;
      case 2:
        m.loss = powerloss::Loss::kKeepPrefix;
        m.torn = true;
        break;
      default:
        m.loss = powerloss::Loss::kKeepSubset;
        m.torn = m.garbage = true;
    }
    return m;
  }

  void Round(int round) {
    ++totals_.rounds;
    vfs_->CutAfter(1 + rng_() % kMaxCutCalls);
    {
      auto loop = platform::Loop::Create();
      ASSERT_TRUE(loop.ok());
      std::unique_ptr<Journal> j = Open(**loop, round);
      // Now and then the agent was restarted cleanly first: the close
      // checkpoints and deletes the WAL (an unsynced unlink), the open
      // makes a new one; the power may go in between.
      if (j && rng_() % 8 == 0) {
        ++totals_.clean_restarts;
        j.reset();
        (*loop)->Run();
        if (vfs_->cut()) {
          ++totals_.cut_in_close;
        } else {
          j = Open(**loop, round);
        }
      }
      if (j) {
        Load(**loop, *j);
        j.reset();
      }
      (*loop)->Run();
    }
    ++totals_.cut_calls[vfs_->cut_call()];
    Reboot(round);
  }

  // Step 2. Null when the open failed (allowed only once the power is gone).
  std::unique_ptr<Journal> Open(platform::Loop& loop, int round) {
    auto j = Journal::Open(loop, Options());
    if (!j.ok()) {
      if (vfs_->cut()) {
        ++totals_.cut_in_open;
      } else {
        ++totals_.open_failures;
        ADD_FAILURE() << "round " << round
                      << ": open failed with the power on: " << j.status().ToString();
      }
      return nullptr;
    }
    Verify(loop, **j, round);
    return std::move(j).value();
  }

  // Step 2: every message that must be stored is.
  void Verify(platform::Loop& loop, Journal& journal, int round) {
    if (journal.stats().corrupt_files_moved != 0) {
      ++totals_.corrupt_moved;
      ADD_FAILURE() << "round " << round << ": the journal was moved aside as corrupt";
    }
    std::vector<uint8_t> seen(state_.size(), 0);
    StoredReadSpec spec;
    spec.max_messages = 4096;
    spec.max_bytes = 16u << 20;
    while (true) {
      bool done = false;
      Result<StoredRead> read = Status::Internal("no callback");
      journal.ReadStored(spec, [&](Result<StoredRead> r) {
        read = std::move(r);
        done = true;
      });
      while (!done && loop.RunOnce()) {
      }
      ASSERT_TRUE(done && read.ok()) << "round " << round << ": " << read.status().ToString();
      for (const StoredMessage& m : read->rows) {
        uint64_t id = IdOf(m.message.payload);
        ASSERT_LT(id, state_.size()) << "round " << round << ": a row nobody appended";
        if (seen[id]++) ++totals_.stored_twice;
        if (!(state_[id] & (kAcked | kDelivered | kRecovered))) {
          state_[id] |= kRecovered;
          ++totals_.recovered;
          outstanding_.insert(id);
        }
        spec.after_seq = m.seq;
      }
      if (read->complete || read->rows.empty()) break;
    }
    uint64_t lost_before = totals_.lost;
    for (auto it = outstanding_.begin(); it != outstanding_.end();) {
      if (seen[*it]) {
        ++it;
        continue;
      }
      if (totals_.lost < 5) {
        std::printf("  round %d: id %" PRIu64 " (%s) is gone\n", round, *it,
                    state_[*it] & kAcked ? "acked" : "recovered earlier");
      }
      ++totals_.lost;
      it = outstanding_.erase(it);
    }
    totals_.most_lost_in_a_round =
        std::max(totals_.most_lost_in_a_round, totals_.lost - lost_before);
  }

  // Step 3: appends and the uplink stand-in until the power goes.
  void Load(platform::Loop& loop, Journal& journal) {
    int in_flight = 0;
    bool fetching = false, stop = false;
    uint64_t appended = 0;
    auto start = std::chrono::steady_clock::now();
    std::function<void()> submit = [&] {
      uint64_t id = state_.size();
      state_.push_back(0);
      Message m;
      m.topic = "power/" + std::to_string(id % kProducers);
      m.ts_ms = static_cast<int64_t>(id);
      m.priority = static_cast<Priority>(rng_() % 3);
      m.payload = PayloadFor(id, rng_);
      ++in_flight;
      ++appended;
      journal.Append(std::move(m), [&, id](Result<AppendOutcome> r) {
        --in_flight;
        OnAck(id, r);
        if (!stop && r.ok()) submit();
      });
    };
    for (int i = 0; i < kProducers * kWindow; ++i) submit();
    platform::TimerHandle tick(loop);
    tick.Start(1, 1, [&] {
      if (!stop && (vfs_->cut() || appended >= kMaxAppendsPerRound ||
                    std::chrono::steady_clock::now() - start > kMaxLoadTime)) {
        stop = true;
        if (vfs_->cut()) {
          ++totals_.cut_under_load;
        } else {
          vfs_->CutNow();
          ++totals_.cut_idle;
        }
      }
      if (!stop && !fetching) Fetch(journal, &fetching, &stop);
    });
    while ((!stop || in_flight > 0 || fetching) && loop.RunOnce()) {
    }
  }

  void OnAck(uint64_t id, const Result<AppendOutcome>& r) {
    if (r.ok()) {
      ++totals_.acked;
      if (vfs_->cut()) ++totals_.acked_after_cut;
      state_[id] |= kAcked;
      if (!(state_[id] & kDelivered)) outstanding_.insert(id);
    } else if (!vfs_->cut()) {
      ADD_FAILURE() << "append failed with the power on: " << r.status().ToString();
    }
  }

  // The uplink: rows count as delivered when fetched (published); MarkSent
  // follows, as after a PUBACK, and the next fetch at once: it drains faster
  // than the producers fill, so the backlog stays far below the cap.
  void Fetch(Journal& journal, bool* fetching, const bool* stop) {
    *fetching = true;
    FetchSpec spec;
    spec.max_messages = 512;
    journal.FetchPending(
        spec, [this, &journal, fetching, stop](Result<std::vector<StoredMessage>> r) {
          if (!r.ok() || r->empty()) {
            *fetching = false;
            return;
          }
          std::vector<uint64_t> seqs;
          for (const StoredMessage& m : *r) {
            uint64_t id = IdOf(m.message.payload);
            if (state_[id] & kDelivered) ++totals_.duplicated;
            state_[id] |= kDelivered;
            ++totals_.delivered;
            outstanding_.erase(id);
            seqs.push_back(m.seq);
          }
          journal.MarkSent(std::move(seqs), [this, &journal, fetching, stop](Status s) {
            *fetching = false;
            if (s.ok() && !*stop) Fetch(journal, fetching, stop);
          });
        });
  }

  // Step 4.
  void Reboot(int round) {
    std::string error;
    ASSERT_TRUE(vfs_->Reboot(NextModel(), rng_, &totals_.disk, &error))
        << "round " << round << ": " << error;
    std::string integrity = IntegrityCheck(path_);
    if (integrity != "ok") {
      ++totals_.integrity_failures;
      ADD_FAILURE() << "round " << round << ": integrity_check: " << integrity;
    }
  }

  const Durability durability_;
  std::mt19937 rng_;
  testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<powerloss::PowerLossVfs> vfs_;
  Totals totals_;
  std::vector<uint8_t> state_;                // by id: kAcked | kDelivered | kRecovered
  std::unordered_set<uint64_t> outstanding_;  // acked or recovered, not delivered
};

}  // namespace edgespool::store::powertest
