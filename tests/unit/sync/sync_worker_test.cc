// The sync worker against a real journal and a scripted uplink port: the
// scheduling, settling and failure rules, without a network. (End-to-end runs
// against a real mosquitto live in tests/integration/.)
#include "sync/sync_worker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "tests/support/test_env.h"

namespace edgespool::sync {
namespace {

using edgespool::testing::TempDir;

// Records publishes; the test decides when and how each is answered.
class ScriptedUplink : public UplinkPort {
 public:
  void SetListener(Listener l) override { listener_ = std::move(l); }
  bool connected() const override { return connected_; }
  size_t window_free() const override {
    return window_ > pending_.size() ? window_ - pending_.size() : 0;
  }
  uint32_t max_packet_size() const override { return max_packet_; }
  bool properties_supported() const override { return mqtt5_; }
  uint64_t Publish(OutboundPublish p) override {
    uint64_t token = ++next_token_;
    wire_ += p.payload.size();
    sent_.push_back(p);
    pending_.push_back(token);
    return token;
  }
  uint64_t wire_bytes() const override { return wire_; }

  void Connect() {
    connected_ = true;
    if (listener_.on_connected) listener_.on_connected();
  }
  void Disconnect() {
    connected_ = false;
    if (listener_.on_disconnected) listener_.on_disconnected("test");
  }
  // Answers the oldest n in-flight publishes with `outcome`.
  void Answer(size_t n, PublishOutcome outcome = PublishOutcome::kAcked, uint8_t code = 0) {
    for (size_t i = 0; i < n && !pending_.empty(); ++i) {
      uint64_t t = pending_.front();
      pending_.erase(pending_.begin());
      PublishResult r;
      r.outcome = outcome;
      r.reason_code = code;
      r.reason = code ? "not authorized" : "";
      listener_.on_publish_result(t, r);
    }
  }

  bool connected_ = false;
  bool mqtt5_ = true;
  size_t window_ = 10;
  uint32_t max_packet_ = 0;
  std::vector<OutboundPublish> sent_;
  std::vector<uint64_t> pending_;
  uint64_t next_token_ = 0;
  uint64_t wire_ = 0;
  Listener listener_;
};

class SyncWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_ = std::move(platform::Loop::Create().value());
    store::JournalOptions o;
    o.path = dir_.File("journal.db");
    o.durability = store::Durability::kNormal;
    auto j = store::Journal::Open(*loop_, o);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    journal_ = std::move(*j);
  }
  void TearDown() override {
    worker_.reset();
    journal_.reset();
    loop_->RunNoWait();
  }

  // Runs the loop until pred() or the timeout.
  bool RunUntil(const std::function<bool()>& pred, int timeout_ms = 10000) {
    platform::TimerHandle tick(*loop_);
    tick.Start(1, 1, [] {});
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      loop_->RunOnce();
    }
    return true;
  }

  void Append(const std::string& topic, int64_t ts, const std::string& payload,
              store::Priority prio = store::Priority::kNormal) {
    store::Message m;
    m.topic = topic;
    m.ts_ms = ts;
    m.priority = prio;
    m.payload = payload;
    ++appending_;
    journal_->Append(std::move(m), [this](Result<store::AppendOutcome> r) {
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      --appending_;
    });
  }
  void WaitAppended() { ASSERT_TRUE(RunUntil([&] { return appending_ == 0; })); }

  void StartWorker(SyncOptions o = {}) {
    o.node = "gw";
    worker_ = std::make_unique<SyncWorker>(*loop_, *journal_, uplink_, o,
                                           platform::SystemClock::Get());
    worker_->SetDeliveryListener([this](uint64_t seq, store::MessageState s, const std::string& r) {
      delivered_[seq] = s;
      reasons_[seq] = r;
    });
    worker_->Start();
  }

  store::MessageState StateOf(uint64_t seq) {
    store::MessageState st = store::MessageState::kUnknown;
    bool done = false;
    journal_->Query(seq, [&](Result<store::QueryResult> r) {
      if (r.ok()) st = r->state;
      done = true;
    });
    EXPECT_TRUE(RunUntil([&] { return done; }));
    return st;
  }

  TempDir dir_;
  std::unique_ptr<platform::Loop> loop_;
  std::unique_ptr<store::Journal> journal_;
  ScriptedUplink uplink_;
  std::unique_ptr<SyncWorker> worker_;
  int appending_ = 0;
  std::map<uint64_t, store::MessageState> delivered_;
  std::map<uint64_t, std::string> reasons_;
};

TEST_F(SyncWorkerTest, NothingLeavesWhileDisconnectedThenDrainsInUploadOrder) {
  std::vector<int64_t> ts(200);
  for (size_t i = 0; i < ts.size(); ++i) ts[i] = 1000 + static_cast<int64_t>(i);
  std::shuffle(ts.begin(), ts.end(), std::mt19937(1));
  for (size_t i = 0; i < ts.size(); ++i) Append("t/" + std::to_string(i % 4), ts[i], std::to_string(ts[i]));
  WaitAppended();
  StartWorker();
  loop_->RunNoWait();
  EXPECT_TRUE(uplink_.sent_.empty());
  uplink_.Connect();
  // The window (10) bounds what is in flight; answer as we go.
  ASSERT_TRUE(RunUntil([&] {
    EXPECT_LE(uplink_.pending_.size(), uplink_.window_);
    uplink_.Answer(3);
    return worker_->stats().messages_sent_total == ts.size();
  }));
  ASSERT_EQ(uplink_.sent_.size(), ts.size());
  for (size_t i = 1; i < uplink_.sent_.size(); ++i) {
    EXPECT_LT(std::stoll(uplink_.sent_[i - 1].payload), std::stoll(uplink_.sent_[i].payload))
        << "not in original-timestamp order at " << i;
  }
  // MQTT 5 user properties carry the metadata.
  const auto& props = uplink_.sent_[0].user_properties;
  auto has = [&](const std::string& k) {
    return std::any_of(props.begin(), props.end(), [&](auto& p) { return p.first == k; });
  };
  EXPECT_TRUE(has("es-ts") && has("es-seq") && has("es-node"));
  ASSERT_TRUE(RunUntil([&] { return worker_->idle(); }));
  EXPECT_EQ(StateOf(1), store::MessageState::kSent);
  EXPECT_EQ(delivered_.size(), ts.size());
}

TEST_F(SyncWorkerTest, NothingIsMarkedSentBeforeItsAck) {
  for (int i = 0; i < 5; ++i) Append("t", i, "p");
  WaitAppended();
  StartWorker();
  uplink_.Connect();
  ASSERT_TRUE(RunUntil([&] { return uplink_.sent_.size() == 5; }));
  // Give the worker every chance to mark early.
  for (int i = 0; i < 50; ++i) loop_->RunNoWait();
  for (uint64_t seq = 1; seq <= 5; ++seq) EXPECT_EQ(StateOf(seq), store::MessageState::kPending);
  uplink_.Answer(2);
  ASSERT_TRUE(RunUntil([&] { return StateOf(2) == store::MessageState::kSent; }));
  EXPECT_EQ(StateOf(3), store::MessageState::kPending);
}

TEST_F(SyncWorkerTest, RefusedAndOversizedBecomeDeadLettersAndTheQueueMovesOn) {
  Append("t", 1, "fine");
  Append("t", 2, "refused");
  Append("t", 3, std::string(5000, 'x'));
  Append("t", 4, "after");
  WaitAppended();
  uplink_.max_packet_ = 1024;
  StartWorker();
  uplink_.Connect();
  ASSERT_TRUE(RunUntil([&] { return uplink_.sent_.size() == 3; }));  // the big one never goes
  uplink_.Answer(1);
  uplink_.Answer(1, PublishOutcome::kRejected, 0x87);
  uplink_.Answer(1);
  ASSERT_TRUE(RunUntil([&] { return worker_->idle() && delivered_.size() == 4; }));
  EXPECT_EQ(delivered_[2], store::MessageState::kDead);
  EXPECT_NE(reasons_[2].find("0x87"), std::string::npos) << reasons_[2];
  EXPECT_EQ(delivered_[3], store::MessageState::kDead);
  EXPECT_NE(reasons_[3].find("maximum packet size"), std::string::npos) << reasons_[3];
  EXPECT_EQ(StateOf(2), store::MessageState::kDead);
  EXPECT_EQ(StateOf(3), store::MessageState::kDead);
  EXPECT_EQ(StateOf(4), store::MessageState::kSent);
}

TEST_F(SyncWorkerTest, RetriedMessagesGoAgainUntilMaxAttempts) {
  Append("t", 1, "a");
  WaitAppended();
  SyncOptions o;
  o.max_attempts = 3;
  StartWorker(o);
  uplink_.Connect();
  for (int attempt = 1; attempt <= 2; ++attempt) {
    ASSERT_TRUE(RunUntil([&] { return uplink_.sent_.size() == static_cast<size_t>(attempt); }));
    uplink_.Answer(1, PublishOutcome::kRetry);
  }
  ASSERT_TRUE(RunUntil([&] { return uplink_.sent_.size() == 3; }));
  uplink_.Answer(1, PublishOutcome::kRetry);
  ASSERT_TRUE(RunUntil([&] { return delivered_.count(1) == 1; }));
  EXPECT_EQ(delivered_[1], store::MessageState::kDead);
  EXPECT_NE(reasons_[1].find("3 attempts"), std::string::npos);
  for (int i = 0; i < 20; ++i) loop_->RunNoWait();
  EXPECT_EQ(uplink_.sent_.size(), 3u);
}

TEST_F(SyncWorkerTest, BatchModePacksFramesThatDecodeToTheMessages) {
  for (int i = 0; i < 250; ++i) Append("s/" + std::to_string(i % 3), 1000 + i, "payload-" + std::to_string(i));
  WaitAppended();
  SyncOptions o;
  o.default_mode = UploadMode::kBatch;
  o.batch_messages = 100;
  o.linger_ms = 20;
  StartWorker(o);
  uplink_.Connect();
  ASSERT_TRUE(RunUntil([&] {
    uplink_.Answer(10);
    return worker_->stats().messages_sent_total == 250;
  }));
  ASSERT_EQ(uplink_.sent_.size(), 3u);  // 100 + 100 + 50
  std::vector<std::string> payloads;
  for (const auto& p : uplink_.sent_) {
    EXPECT_EQ(p.topic, "edgespool/gw/batch");
    auto frame = batch::DecodeFrame(p.payload);
    ASSERT_TRUE(frame.ok()) << frame.status().ToString();
    EXPECT_EQ(frame->node, "gw");
    for (const auto& r : frame->records) payloads.push_back(r.payload);
  }
  ASSERT_EQ(payloads.size(), 250u);
  for (int i = 0; i < 250; ++i) EXPECT_EQ(payloads[i], "payload-" + std::to_string(i));
  EXPECT_EQ(worker_->stats().batches_sent_total, 3u);
}

// A reload mid-stream (SyncWorker::Reconfigure): rows already read go out as
// they were built (a batch being filled is closed at once), later rows
// follow the new routes and mode (a live-first route is added, so the lanes
// are rebuilt, possibly under a read in flight), and every row is sent
// exactly once.
TEST_F(SyncWorkerTest, ReconfigureMidStreamAppliesNewRoutesAndLosesNothing) {
  SyncOptions o;
  o.default_mode = UploadMode::kBatch;
  o.batch_messages = 1000;
  o.linger_ms = 60000;
  StartWorker(o);
  uplink_.Connect();
  loop_->RunNoWait();
  std::multiset<std::string> expected;
  for (int i = 0; i < 50; ++i) {
    Append("s/x", 1000 + i, "old-" + std::to_string(i));
    expected.insert("old-" + std::to_string(i));
  }
  WaitAppended();
  ASSERT_TRUE(RunUntil([&] { return !worker_->idle(); }));  // read or being read

  SyncOptions next = o;
  next.default_mode = UploadMode::kMessage;
  Route r;
  r.match = "s/#";
  r.mode = UploadMode::kMessage;
  r.order = UploadOrder::kLiveFirst;
  r.upstream_topic = "v2/{topic}";
  next.routes = {r};
  next.priority_weights = {10, 10, 10};
  worker_->Reconfigure(next);
  for (int i = 0; i < 30; ++i) {
    Append("s/x", 2000 + i, "new-" + std::to_string(i));
    expected.insert("new-" + std::to_string(i));
  }
  Append("t/y", 3000, "catch-all");  // the implied catch-all, now message mode
  expected.insert("catch-all");
  WaitAppended();
  ASSERT_TRUE(RunUntil([&] {
    uplink_.Answer(5);
    return worker_->stats().messages_sent_total == expected.size();
  }));
  ASSERT_TRUE(RunUntil([&] { return worker_->idle(); }));
  std::multiset<std::string> got;
  for (const auto& p : uplink_.sent_) {
    if (p.topic == "edgespool/gw/batch") {
      auto frame = batch::DecodeFrame(p.payload);
      ASSERT_TRUE(frame.ok());
      for (const auto& rec : frame->records) {
        EXPECT_EQ(rec.payload.substr(0, 4), "old-") << "batched after the reload";
        got.insert(rec.payload);
      }
      continue;
    }
    got.insert(p.payload);
    EXPECT_EQ(p.topic, p.payload == "catch-all" ? "t/y" : "v2/s/x") << p.payload;
  }
  EXPECT_EQ(got, expected);
  EXPECT_EQ(delivered_.size(), expected.size());
  for (const auto& [seq, state] : delivered_) EXPECT_EQ(state, store::MessageState::kSent) << seq;
}

TEST_F(SyncWorkerTest, LiveMessagesFlowAfterTheBacklog) {
  StartWorker();
  uplink_.Connect();
  loop_->RunNoWait();
  for (int i = 0; i < 20; ++i) Append("live", i, std::to_string(i));
  ASSERT_TRUE(RunUntil([&] {
    uplink_.Answer(5);
    return worker_->stats().messages_sent_total == 20;
  }));
  // And again after going idle: the commit listener wakes the worker.
  Append("live", 100, "late");
  ASSERT_TRUE(RunUntil([&] {
    uplink_.Answer(1);
    return worker_->stats().messages_sent_total == 21;
  }));
}

TEST_F(SyncWorkerTest, PrioritiesShareTheUplinkByWeightAndLowNeverStarves) {
  for (int i = 0; i < 400; ++i) {
    Append("low", i, "L", store::Priority::kLow);
    Append("high", i, "H", store::Priority::kHigh);
  }
  WaitAppended();
  SyncOptions o;
  o.fetch_chunk = 20;  // small reads so the scheduler decides often
  StartWorker(o);
  uplink_.window_ = 20;
  uplink_.Connect();
  ASSERT_TRUE(RunUntil([&] {
    uplink_.Answer(20);
    return uplink_.sent_.size() >= 320;
  }));
  size_t low = 0;
  for (size_t i = 0; i < 320; ++i) low += uplink_.sent_[i].payload == "L" ? 1 : 0;
  // Weights 70/20/10 with only high and low waiting: 7 to 1, so ~40 of 320.
  EXPECT_GT(low, 20u) << "low priority starved";
  EXPECT_LT(low, 80u) << "high priority not favoured";
  ASSERT_TRUE(RunUntil([&] {
    uplink_.Answer(20);
    return worker_->stats().messages_sent_total == 800;
  }));
}

TEST_F(SyncWorkerTest, BandwidthLimitPacesPublishes) {
  for (int i = 0; i < 30; ++i) Append("t", i, std::string(1000, 'b'));
  WaitAppended();
  SyncOptions o;
  o.bandwidth_limit = 20000;  // bytes/s: 30 KB takes ~0.5 s after the first burst
  o.batch_bytes = 1024;       // burst = max(limit, batch_bytes)
  StartWorker(o);
  uplink_.window_ = 100;
  auto start = std::chrono::steady_clock::now();
  uplink_.Connect();
  ASSERT_TRUE(RunUntil([&] {
    uplink_.Answer(100);
    return worker_->stats().messages_sent_total == 30;
  }));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(secs, 0.3) << "30 KB at 20 KB/s with a 20 KB burst";
}

TEST_F(SyncWorkerTest, FreshCommitsAreServedFromMemoryWhileTheUplinkKeepsUp) {
  StartWorker();
  uplink_.window_ = 1000;
  uplink_.Connect();
  ASSERT_TRUE(RunUntil([&] { return worker_->idle(); }));  // the first read found nothing
  for (int i = 0; i < 200; ++i) Append("t", i, std::to_string(i));
  ASSERT_TRUE(RunUntil([&] {
    uplink_.Answer(1000);
    return worker_->stats().messages_sent_total == 200;
  }));
  const SyncStats& st = worker_->stats();
  EXPECT_EQ(st.tail_messages_total + st.fetched_messages_total, 200u);
  // Only a read every kTailTrustNs (1 s) goes to the journal.
  EXPECT_GE(st.tail_messages_total, 100u);
  std::set<std::string> seqs;
  for (const auto& p : uplink_.sent_) {
    for (const auto& [k, v] : p.user_properties) {
      if (k == "es-seq") {
        EXPECT_TRUE(seqs.insert(v).second) << "seq " << v << " sent twice";
      }
    }
  }
  EXPECT_EQ(seqs.size(), 200u);
  ASSERT_TRUE(RunUntil([&] { return worker_->idle(); }));
  for (uint64_t seq = 1; seq <= 200; ++seq) EXPECT_EQ(StateOf(seq), store::MessageState::kSent);
}

TEST_F(SyncWorkerTest, AFullWindowLeavesFreshCommitsInTheJournalAndNothingGoesTwice) {
  StartWorker();
  uplink_.window_ = 3;
  uplink_.Connect();
  ASSERT_TRUE(RunUntil([&] { return worker_->idle(); }));
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 20; ++i) Append("t", round * 100 + i, "p");
    WaitAppended();  // committed while publishes wait for the window
    uplink_.Answer(2);
  }
  ASSERT_TRUE(RunUntil([&] {
    uplink_.Answer(1);
    return worker_->stats().messages_sent_total == 200;
  }));
  EXPECT_EQ(uplink_.sent_.size(), 200u) << "a message was published twice";
  EXPECT_GT(worker_->stats().fetched_messages_total, 0u);
}

TEST_F(SyncWorkerTest, InflightBytesAreCappedAndEverythingStillGoes) {
  for (int i = 0; i < 50; ++i) Append("t", i, std::string(1000, 'x'));
  WaitAppended();
  SyncOptions o;
  o.max_inflight_bytes = 3000;  // ~2 publishes of ~1 KB
  StartWorker(o);
  uplink_.window_ = 100;
  uplink_.Connect();
  size_t most = 0;
  ASSERT_TRUE(RunUntil([&] {
    most = std::max(most, uplink_.pending_.size());
    uplink_.Answer(1);
    return worker_->stats().messages_sent_total == 50;
  }));
  EXPECT_EQ(most, 2u);
  EXPECT_EQ(worker_->stats().inflight_bytes, 0u);
}

// Backlog "B<i>" during an outage, then fresh "F<i>" once the drain is under
// way; Run returns the order payloads went out in.
class LiveFirstTest : public SyncWorkerTest {
 protected:
  std::vector<std::string> Run(UploadOrder order) {
    for (int i = 0; i < 200; ++i) Append("tel/a", i, "B" + std::to_string(i));
    Append("other/x", 500, "S0");  // a strict route's message: never overtakes
    WaitAppended();
    SyncOptions o;
    Route r;
    r.match = "tel/#";
    r.order = order;
    o.routes.push_back(r);
    o.fetch_chunk = 10;  // small reads, so the scheduler decides often
    o.backlog_share = 20;
    StartWorker(o);
    uplink_.window_ = 5;
    uplink_.Connect();
    EXPECT_TRUE(RunUntil([&] {
      uplink_.Answer(5);
      return uplink_.sent_.size() >= 40;
    }));
    for (int i = 0; i < 100; ++i) Append("tel/a", 1000 + i, "F" + std::to_string(i));
    Append("other/x", 2000, "S1");
    EXPECT_TRUE(RunUntil([&] {
      uplink_.Answer(1);
      return worker_->stats().messages_sent_total == 302;
    }));
    std::vector<std::string> out;
    for (const auto& p : uplink_.sent_) out.push_back(p.payload);
    return out;
  }
  static size_t IndexOf(const std::vector<std::string>& v, const std::string& s) {
    return static_cast<size_t>(std::find(v.begin(), v.end(), s) - v.begin());
  }
};

TEST_F(LiveFirstTest, FreshMessagesOvertakeTheBacklogWhichStillDrainsInOrder) {
  auto sent = Run(UploadOrder::kLiveFirst);
  ASSERT_EQ(sent.size(), 302u);
  EXPECT_EQ(std::set<std::string>(sent.begin(), sent.end()).size(), 302u) << "duplicates";
  size_t first_fresh = IndexOf(sent, "F0");
  size_t last_fresh = IndexOf(sent, "F99");
  size_t last_backlog = IndexOf(sent, "B199");
  // 100 fresh at 80% of the uplink: out within ~125 publishes of arriving,
  // while ~160 backlog messages were waiting.
  EXPECT_LT(first_fresh, 60u);
  EXPECT_LT(last_fresh, last_backlog);
  // The backlog keeps its 20% share while fresh messages flow...
  size_t backlog_between = 0;
  for (size_t i = first_fresh; i <= last_fresh; ++i) backlog_between += sent[i][0] == 'B';
  EXPECT_GE(backlog_between, 10u) << "the backlog starved";
  EXPECT_LE(backlog_between, 60u) << "fresh messages did not overtake";
  std::printf("live-first: fresh sent at publishes %zu..%zu with %zu backlog between (share 20%%)\n",
              first_fresh, last_fresh, backlog_between);
  // ...and both drain in their own order.
  size_t prev_b = 0, prev_f = 0;
  for (int i = 1; i < 200; ++i) {
    size_t b = IndexOf(sent, "B" + std::to_string(i));
    EXPECT_GT(b, prev_b);
    prev_b = b;
  }
  for (int i = 1; i < 100; ++i) {
    size_t f = IndexOf(sent, "F" + std::to_string(i));
    EXPECT_GT(f, prev_f);
    prev_f = f;
  }
  // A strict route's fresh message waits behind its own backlog.
  EXPECT_LT(IndexOf(sent, "S0"), IndexOf(sent, "S1"));
}

TEST_F(LiveFirstTest, StrictDrainsTheBacklogFirst) {
  auto sent = Run(UploadOrder::kStrict);
  ASSERT_EQ(sent.size(), 302u);
  EXPECT_GT(IndexOf(sent, "F0"), IndexOf(sent, "B199"));
}

}  // namespace
}  // namespace edgespool::sync
