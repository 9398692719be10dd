// Crash-safety harness shared by journal_crash_test (a few rounds, default
// run) and tests/fault/journal_crash_slow_test (50 rounds).
//
// A forked child appends in a loop (64 appends in flight) and writes
// "<seq> <index>\n" to a pipe for every ack; the parent SIGKILLs it at a
// random moment, then reopens the file and checks that every acked seq is
// present with exactly the payload the child wrote, and that the file passes
// integrity_check.
#pragma once

#include <cinttypes>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "platform/loop.h"
#include "store/journal.h"

namespace edgespool::store::crashtest {

inline std::string PayloadFor(uint64_t index) {
  std::string p = "msg-" + std::to_string(index) + "-";
  while (p.size() < 200) p += static_cast<char>('a' + (index + p.size()) % 26);
  return p;
}

[[noreturn]] inline void ChildMain(const std::string& path, Durability durability,
                                   uint64_t first_index, int out_fd) {
  auto loop = platform::Loop::Create();
  if (!loop.ok()) _exit(2);
  JournalOptions o;
  o.path = path;
  o.durability = durability;
  auto j = Journal::Open(**loop, o);
  if (!j.ok()) _exit(3);
  Journal& journal = **j;
  uint64_t next = first_index;
  const uint64_t last = first_index + 500000;  // bound: the parent kills us long before
  std::function<void()> submit;
  submit = [&] {
    uint64_t index = next++;
    Message m;
    m.topic = "crash/" + std::to_string(index % 7);
    m.ts_ms = static_cast<int64_t>(index);
    m.priority = static_cast<Priority>(index % 3);
    m.payload = PayloadFor(index);
    journal.Append(std::move(m), [&, index](Result<AppendOutcome> r) {
      if (!r.ok()) _exit(4);
      std::string line = std::to_string(r->seq) + " " + std::to_string(index) + "\n";
      if (write(out_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(5);
      if (next < last) submit();
    });
  };
  for (int i = 0; i < 64; ++i) submit();
  (*loop)->Run();
  _exit(0);
}

// Reads the child's lines until it is gone (killed after kill_after_ms).
inline std::string RunAndKill(pid_t pid, int fd, int kill_after_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kill_after_ms);
  std::string data;
  char buf[65536];
  bool killed = false;
  while (true) {
    auto now = std::chrono::steady_clock::now();
    if (!killed && now >= deadline) {
      kill(pid, SIGKILL);
      killed = true;
    }
    int timeout =
        killed
            ? 1000
            : static_cast<int>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()) +
                  1;
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, timeout);
    if (n > 0) {
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) break;
      data.append(buf, static_cast<size_t>(r));
    } else if (killed && n == 0) {
      break;
    }
  }
  return data;
}

struct Acked {
  uint64_t seq;
  uint64_t index;
};

// One round; returns the number of acks verified (or records a failure).
inline size_t RunRound(const std::string& path, Durability durability, int round,
                       std::mt19937& rng) {
  int fds[2];
  if (pipe(fds) != 0) {
    ADD_FAILURE() << "pipe failed";
    return 0;
  }
  uint64_t first_index = static_cast<uint64_t>(round) * 1000000;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    ChildMain(path, durability, first_index, fds[1]);
  }
  close(fds[1]);
  // Kill somewhere between "still opening" and "well into appending".
  int kill_after_ms = 20 + static_cast<int>(rng() % 400);
  std::string data = RunAndKill(pid, fds[0], kill_after_ms);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "child ended on its own, status " << status;

  std::vector<Acked> acked;
  size_t pos = 0;
  while (true) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) break;  // a torn last line was never a full ack
    Acked a{};
    if (sscanf(data.c_str() + pos, "%" SCNu64 " %" SCNu64, &a.seq, &a.index) == 2) {
      acked.push_back(a);
    }
    pos = nl + 1;
  }

  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* check = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &check, nullptr);
  EXPECT_EQ(sqlite3_step(check), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(check, 0)), "ok")
      << "round " << round;
  sqlite3_finalize(check);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT payload, ts FROM journal WHERE seq = ?", -1, &st, nullptr);
  size_t verified = 0;
  for (const Acked& a : acked) {
    sqlite3_bind_int64(st, 1, static_cast<int64_t>(a.seq));
    if (sqlite3_step(st) == SQLITE_ROW) {
      std::string payload(static_cast<const char*>(sqlite3_column_blob(st, 0)),
                          static_cast<size_t>(sqlite3_column_bytes(st, 0)));
      if (payload == PayloadFor(a.index) &&
          sqlite3_column_int64(st, 1) == static_cast<int64_t>(a.index)) {
        ++verified;
      } else {
        ADD_FAILURE() << "round " << round << ": seq " << a.seq << " has the wrong payload";
      }
    } else {
      ADD_FAILURE() << "round " << round << ": acked seq " << a.seq << " (index " << a.index
                    << ") is missing after the crash";
    }
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return verified;
}

// Runs `rounds` crash rounds on one file, then checks the journal opens
// clean (nothing moved aside) with every verified row pending.
inline void RunCrashRounds(const std::string& path, Durability durability, int rounds,
                           uint32_t seed) {
  std::mt19937 rng(seed);
  size_t total = 0;
  for (int round = 0; round < rounds; ++round) {
    total += RunRound(path, durability, round, rng);
    if (::testing::Test::HasFailure()) return;
  }
  auto loop = platform::Loop::Create();
  ASSERT_TRUE(loop.ok());
  JournalOptions o;
  o.path = path;
  auto j = Journal::Open(**loop, o);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)->stats().corrupt_files_moved, 0u);
  EXPECT_GE((*j)->stats().pending_count, total);
  std::printf("%d crash rounds (%s): %zu acked messages verified\n", rounds,
              durability == Durability::kFull ? "full" : "normal", total);
}

}  // namespace edgespool::store::crashtest
