// Crash safety of the downlink's writes: a forked child keeps 32 inbound
// appends and 32 producer appends in flight (sharing commit groups) and
// saves a consumer session every 50 inbound acks; the parent SIGKILLs it at
// a random moment, then checks that every acknowledged inbox row is there
// with its exact payload, that the last acknowledged session save (or a
// later one) survived, and that the file passes integrity_check.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "platform/loop.h"
#include "store/journal.h"
#include "tests/support/test_env.h"
#include "tests/unit/store/journal_crash_util.h"

namespace edgespool::store {
namespace {

using crashtest::PayloadFor;

// Child: prints "I <inbox seq> <index>" per inbound ack, "S <acked>" per
// session save acked.
[[noreturn]] void InboundChild(const std::string& path, Durability durability, uint64_t first,
                               int out_fd) {
  auto loop = platform::Loop::Create();
  if (!loop.ok()) _exit(2);
  JournalOptions o;
  o.path = path;
  o.durability = durability;
  auto j = Journal::Open(**loop, o);
  if (!j.ok()) _exit(3);
  Journal& journal = **j;
  uint64_t next = first, inbound_acks = 0;
  auto emit = [out_fd](const std::string& line) {
    if (write(out_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(5);
  };
  std::function<void()> inbound, produce;
  inbound = [&] {
    uint64_t index = next++;
    InboundMessage m;
    m.topic = "down/" + std::to_string(index % 5);
    m.broker_topic = "edgespool/gw1/" + m.topic;
    m.received_ms = static_cast<int64_t>(index);
    m.payload = PayloadFor(index);
    journal.AppendInbound(std::move(m), [&, index](Result<uint64_t> r) {
      if (!r.ok()) _exit(4);
      emit("I " + std::to_string(*r) + " " + std::to_string(index) + "\n");
      if (++inbound_acks % 50 == 0) {
        uint64_t acked = *r;
        journal.SaveConsumerSession({"hmi", {"down/#"}, acked, 1, 0}, [&, acked](Status s) {
          if (!s.ok()) _exit(6);
          emit("S " + std::to_string(acked) + "\n");
        });
      }
      inbound();
    });
  };
  produce = [&] {
    Message m;
    m.topic = "up/load";
    m.ts_ms = 1;
    m.payload = std::string(200, 'u');
    journal.Append(std::move(m), [&](Result<AppendOutcome> r) {
      if (!r.ok()) _exit(7);
      produce();
    });
  };
  for (int i = 0; i < 32; ++i) {
    inbound();
    produce();
  }
  (*loop)->Run();
  _exit(0);
}

struct Acks {
  std::vector<std::pair<uint64_t, uint64_t>> inbound;  // seq, index
  uint64_t session_acked = 0;                          // last acked save
};

Acks Parse(const std::string& data) {
  Acks acks;
  size_t pos = 0;
  while (true) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) break;  // a torn last line was never a full ack
    uint64_t a = 0, b = 0;
    if (sscanf(data.c_str() + pos, "I %" SCNu64 " %" SCNu64, &a, &b) == 2) {
      acks.inbound.emplace_back(a, b);
    } else if (sscanf(data.c_str() + pos, "S %" SCNu64, &a) == 1) {
      acks.session_acked = std::max(acks.session_acked, a);
    }
    pos = nl + 1;
  }
  return acks;
}

// Checks the file against the acks; returns the inbox rows verified.
size_t Verify(const std::string& path, const Acks& acks, int round) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr);
  EXPECT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok") << round;
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db, "SELECT payload, received_at FROM inbox WHERE seq = ?", -1, &st, nullptr);
  size_t verified = 0;
  for (const auto& [seq, index] : acks.inbound) {
    sqlite3_bind_int64(st, 1, static_cast<int64_t>(seq));
    if (sqlite3_step(st) == SQLITE_ROW) {
      std::string payload(static_cast<const char*>(sqlite3_column_blob(st, 0)),
                          static_cast<size_t>(sqlite3_column_bytes(st, 0)));
      EXPECT_EQ(payload, PayloadFor(index)) << "round " << round << " inbox seq " << seq;
      EXPECT_EQ(sqlite3_column_int64(st, 1), static_cast<int64_t>(index));
      ++verified;
    } else {
      ADD_FAILURE() << "round " << round << ": acked inbox seq " << seq << " is missing";
    }
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db, "SELECT acked FROM consumer_sessions WHERE name = 'hmi'", -1, &st,
                     nullptr);
  uint64_t saved =
      sqlite3_step(st) == SQLITE_ROW ? static_cast<uint64_t>(sqlite3_column_int64(st, 0)) : 0;
  EXPECT_GE(saved, acks.session_acked) << "round " << round << ": an acked session save is lost";
  sqlite3_finalize(st);
  sqlite3_close(db);
  return verified;
}

void RunRounds(Durability durability, int rounds, uint32_t seed) {
  testing::TempDir dir;
  std::string path = dir.File("journal.db");
  std::mt19937 rng(seed);
  size_t total = 0;
  uint64_t max_seq = 0, session_saves = 0;
  for (int round = 0; round < rounds; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      InboundChild(path, durability, static_cast<uint64_t>(round) * 1000000, fds[1]);
    }
    close(fds[1]);
    std::string data = crashtest::RunAndKill(pid, fds[0], 20 + static_cast<int>(rng() % 400));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
    Acks acks = Parse(data);
    for (const auto& a : acks.inbound) max_seq = std::max(max_seq, a.first);
    if (acks.session_acked) ++session_saves;
    total += Verify(path, acks, round);
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_GT(session_saves, 0u) << "no round got as far as a session save";
  auto loop = platform::Loop::Create();
  ASSERT_TRUE(loop.ok());
  JournalOptions o;
  o.path = path;
  auto j = Journal::Open(**loop, o);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)->stats().corrupt_files_moved, 0u);
  EXPECT_GE((*j)->stats().inbox_count, total);
  EXPECT_GE((*j)->stats().inbox_head_seq, max_seq);
  std::printf("%d crash rounds (%s): %zu acked inbox rows verified\n", rounds,
              durability == Durability::kFull ? "full" : "normal", total);
}

TEST(JournalInboxCrashTest, EveryAckedInboundSurvivesSigkillFull) {
  RunRounds(Durability::kFull, 5, 4321);
}

TEST(JournalInboxCrashTest, EveryAckedInboundSurvivesSigkillNormal) {
  RunRounds(Durability::kNormal, 5, 8765);
}

}  // namespace
}  // namespace edgespool::store
