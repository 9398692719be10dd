#include "store/backlog_count.h"

#include <utility>

#include "platform/process_info.h"
#include "store/schema.h"

namespace edgespool::store {
namespace {

std::mutex hook_mu;
BacklogCount::TestHooks& Hooks() {
  static BacklogCount::TestHooks hooks;
  return hooks;
}

}  // namespace

void BacklogCount::SetTestHooks(TestHooks hooks) {
  std::lock_guard<std::mutex> lock(hook_mu);
  Hooks() = std::move(hooks);
}

bool BacklogCount::AlwaysForTest() {
  std::lock_guard<std::mutex> lock(hook_mu);
  return Hooks().always;
}

Result<std::unique_ptr<BacklogCount>> BacklogCount::Start(const std::string& path) {
  std::unique_ptr<BacklogCount> c(new BacklogCount());
  ES_RETURN_IF_ERROR(c->db_.Open(path, SQLITE_OPEN_READWRITE, kJournalVfs));
  ES_RETURN_IF_ERROR(
      SqliteStatus(sqlite3_busy_timeout(c->db_.raw(), 1000), c->db_.raw(), "busy_timeout"));
  // query_only: this connection never writes. A small cache: the count
  // reads each page of `pending` once.
  ES_RETURN_IF_ERROR(c->db_.Exec("PRAGMA query_only = ON; PRAGMA cache_size = -1024"));
  // A deferred transaction takes its snapshot at its first read: read now,
  // before the journal writes anything.
  ES_RETURN_IF_ERROR(c->db_.Exec("BEGIN"));
  auto probe = c->db_.QueryInt("SELECT count(*) FROM (SELECT 1 FROM pending LIMIT 1)");
  if (!probe.ok()) return probe.status();
  std::function<void()> hook;
  {
    std::lock_guard<std::mutex> lock(hook_mu);
    hook = Hooks().before_count;
  }
  c->thread_ = std::thread([p = c.get(), hook = std::move(hook)] {
    platform::SetThreadName("es-count");
    if (hook) hook();
    p->ThreadMain();
  });
  return c;
}

BacklogCount::~BacklogCount() {
  if (thread_.joinable()) {
    // Safe from another thread while the connection is open; a count not
    // yet started finds the flag instead.
    stop_.store(true);
    sqlite3_interrupt(db_.raw());
    thread_.join();
  }
}

void BacklogCount::ThreadMain() {
  Status s = Status::Cancelled("journal closed before the backlog was counted");
  Counts counts;
  if (!stop_.load()) {
    Stmt st;  // finalized before the ROLLBACK below
    s = db_.Prepare("SELECT count(*), ifnull(sum(bytes), 0) FROM pending", &st);
    if (s.ok() && st.Step(&s)) {
      counts = {static_cast<uint64_t>(st.Int(0)), static_cast<uint64_t>(st.Int(1))};
    } else if (s.ok()) {
      s = Status::Internal("count returned no row");
    }
  }
  // Ends the read transaction: the WAL is free to start over again.
  (void)db_.Exec("ROLLBACK");
  std::function<void()> listener;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = std::move(s);
    counts_ = counts;
    ready_.store(true, std::memory_order_release);
    listener = listener_;
  }
  if (listener) listener();
}

void BacklogCount::SetListener(std::function<void()> listener) {
  bool now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    listener_ = listener;
    now = ready_.load();
  }
  if (now && listener) listener();
}

Result<BacklogCount::Counts> BacklogCount::Take() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!status_.ok()) return status_;
  return counts_;
}

}  // namespace edgespool::store
