// Durable state on one machine: a SQLite file that survives restarts (budget
// ledgers, API keys). One thread owns the connection and runs each batch of
// queued operations in one IMMEDIATE transaction, with the rules of apply()
// (store.cpp): atomic per operation, also against another process on the
// same file.
#include <sqlite3.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/log/log.h"
#include "core/state/store.h"

namespace ferry::state {
namespace {

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db) {
    prepare(get_, "SELECT value, expires_at FROM ferry_state WHERE key = ?1");
    prepare(put_,
            "INSERT INTO ferry_state(key, value, expires_at) VALUES (?1, ?2, ?3) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at");
    prepare(del_, "DELETE FROM ferry_state WHERE key = ?1");
    prepare(scan_,
            "SELECT key, value FROM ferry_state WHERE key >= ?1 AND (expires_at = 0 OR expires_at > ?2) "
            "ORDER BY key LIMIT ?3");
    prepare(sweep_, "DELETE FROM ferry_state WHERE expires_at > 0 AND expires_at <= ?1");
    thread_ = std::thread([this] { run(); });
  }
  ~SqliteStore() override {
    stop();
    for (auto* s : {get_, put_, del_, scan_, sweep_}) sqlite3_finalize(s);
    sqlite3_close(db_);
  }

  bool try_now(const Op&, Result&) override { return false; }
  void submit(Op op, Callback done) override {
    {
      std::lock_guard lock(mu_);
      if (!stopping_) {
        queue_.push_back({std::move(op), std::move(done)});
        cv_.notify_one();
        return;
      }
    }
    Result r;
    r.status = FERRY_ERR_UNAVAILABLE;
    done(std::move(r));
  }
  std::string_view backend() const override { return "sqlite"; }
  bool available() const override { return true; }
  void stop() override {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Pending {
    Op op;
    Callback done;
  };

  void prepare(sqlite3_stmt*& stmt, const char* sql) {
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  bool exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) == SQLITE_OK) return true;
    log::get().error("state: sqlite: {}: {}", sql, err ? err : "?");
    sqlite3_free(err);
    return false;
  }

  void run() {
    auto last_sweep = std::chrono::steady_clock::now();
    for (;;) {
      std::vector<Pending> batch;
      {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, std::chrono::seconds(30), [this] { return stopping_ || !queue_.empty(); });
        size_t n = std::min<size_t>(queue_.size(), 1024);
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        if (batch.empty() && stopping_) return;
      }
      if (std::chrono::steady_clock::now() - last_sweep > std::chrono::seconds(60)) {
        sqlite3_bind_int64(sweep_, 1, now_ms());
        sqlite3_step(sweep_);
        sqlite3_reset(sweep_);
        last_sweep = std::chrono::steady_clock::now();
      }
      if (!batch.empty()) execute(batch);
    }
  }

  void execute(std::vector<Pending>& batch) {
    std::vector<Result> results(batch.size());
    bool ok = exec("BEGIN IMMEDIATE");
    int64_t now = now_ms();
    for (size_t i = 0; ok && i < batch.size(); ++i) {
      const Op& op = batch[i].op;
      results[i] = op.op == FERRY_STATE_SCAN ? scan(op, now) : run_op(op, now, ok);
    }
    if (ok) ok = exec("COMMIT");
    if (!ok) {
      exec("ROLLBACK");
      for (auto& r : results) r = Result::unavailable();
    }
    for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
  }

  static void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }

  Result run_op(const Op& op, int64_t now, bool& ok) {
    std::optional<Cell> cell;
    bind_text(get_, 1, op.key);
    int rc = sqlite3_step(get_);
    if (rc == SQLITE_ROW) {
      auto* text = reinterpret_cast<const char*>(sqlite3_column_blob(get_, 0));
      cell = Cell{std::string(text ? text : "", static_cast<size_t>(sqlite3_column_bytes(get_, 0))),
                  sqlite3_column_int64(get_, 1)};
    }
    sqlite3_reset(get_);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      ok = false;
      return Result::unavailable();
    }
    bool existed = cell.has_value();
    std::string before = cell ? cell->value : std::string();
    int64_t before_expiry = cell ? cell->expires_at_ms : 0;
    Result r = apply(op, cell, now);
    if (!cell && existed) {
      bind_text(del_, 1, op.key);
      ok = sqlite3_step(del_) == SQLITE_DONE;
      sqlite3_reset(del_);
    } else if (cell && (!existed || cell->value != before || cell->expires_at_ms != before_expiry)) {
      bind_text(put_, 1, op.key);
      sqlite3_bind_blob(put_, 2, cell->value.data(), static_cast<int>(cell->value.size()), SQLITE_TRANSIENT);
      sqlite3_bind_int64(put_, 3, cell->expires_at_ms);
      ok = sqlite3_step(put_) == SQLITE_DONE;
      sqlite3_reset(put_);
    }
    if (!ok) log::get().error("state: sqlite write failed: {}", sqlite3_errmsg(db_));
    return ok ? r : Result::unavailable();
  }

  Result scan(const Op& op, int64_t now) {
    Result r;
    nlohmann::json list = nlohmann::json::array();
    bind_text(scan_, 1, op.key);
    sqlite3_bind_int64(scan_, 2, now);
    sqlite3_bind_int64(scan_, 3, op.limit > 0 ? static_cast<int64_t>(op.limit) * 4 : 4000);
    size_t max = op.limit > 0 ? static_cast<size_t>(op.limit) : 1000;
    while (sqlite3_step(scan_) == SQLITE_ROW && list.size() < max) {
      std::string key(reinterpret_cast<const char*>(sqlite3_column_text(scan_, 0)),
                      static_cast<size_t>(sqlite3_column_bytes(scan_, 0)));
      if (!key.starts_with(op.key)) break;  // past the prefix range
      auto* v = reinterpret_cast<const char*>(sqlite3_column_blob(scan_, 1));
      list.push_back(
          {{"key", key.substr(std::min(op.strip, key.size()))},
           {"value", std::string(v ? v : "", static_cast<size_t>(sqlite3_column_bytes(scan_, 1)))}});
    }
    sqlite3_reset(scan_);
    r.data = list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    r.value = static_cast<double>(list.size());
    return r;
  }

  sqlite3* db_;
  sqlite3_stmt *get_ = nullptr, *put_ = nullptr, *del_ = nullptr, *scan_ = nullptr, *sweep_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Store> make_sqlite_store(const config::StateConfig& config, std::string& error) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(config.sqlite_path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  auto fail = [&](const std::string& what) -> std::unique_ptr<Store> {
    error = "[state] path " + config.sqlite_path + ": " + what + ": " +
            (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return nullptr;
  };
  if (rc != SQLITE_OK) return fail("cannot open");
  sqlite3_busy_timeout(db, static_cast<int>(config.command_timeout_ms));
  // WAL: readers do not block the writer; NORMAL sync survives a crash of
  // ferryd (the OS has the pages), at a fraction of FULL's fsync cost.
  const char* setup =
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
      "CREATE TABLE IF NOT EXISTS ferry_state(key TEXT PRIMARY KEY, value BLOB NOT NULL,"
      " expires_at INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;";
  if (sqlite3_exec(db, setup, nullptr, nullptr, nullptr) != SQLITE_OK) return fail("cannot set up");
  try {
    return std::make_unique<SqliteStore>(db);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace ferry::state
