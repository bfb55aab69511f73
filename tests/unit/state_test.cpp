// The shared-state rules (core/state/store.cpp) and the memory and SQLite
// backends; Redis runs in tests/integration/state_test.cpp against a real
// redis-server.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/state/store.h"

namespace ferry::state {
namespace {

Op make(ferry_state_op kind, std::string key, double amount = 0, double limit = 0, uint64_t ttl = 0,
        double rate = 0) {
  Op op;
  op.op = kind;
  op.key = std::move(key);
  op.amount = amount;
  op.limit = limit;
  op.ttl_ms = ttl;
  op.rate = rate;
  return op;
}

TEST(StateRules, AddStopsAtTheLimitAndForceGoesPast) {
  std::optional<Cell> cell;
  auto r = apply(make(FERRY_STATE_ADD, "k", 6, 10, 1000), cell, 0);
  EXPECT_TRUE(r.applied);
  EXPECT_EQ(r.value, 6);
  r = apply(make(FERRY_STATE_ADD, "k", 5, 10), cell, 10);
  EXPECT_FALSE(r.applied);
  EXPECT_EQ(r.value, 6);
  r = apply(make(FERRY_STATE_ADD, "k", 4, 10), cell, 20);
  EXPECT_TRUE(r.applied);
  EXPECT_EQ(r.value, 10);
  auto forced = make(FERRY_STATE_ADD, "k", 2.5, 10);
  forced.flags = FERRY_STATE_FORCE;
  EXPECT_EQ(apply(forced, cell, 30).value, 12.5);
  // Giving back is always allowed.
  EXPECT_EQ(apply(make(FERRY_STATE_ADD, "k", -5, 10), cell, 40).value, 7.5);
  // The period set at creation ends; the counter starts again.
  r = apply(make(FERRY_STATE_ADD, "k", 1, 10, 1000), cell, 1000);
  EXPECT_EQ(r.value, 1);
}

TEST(StateRules, BucketRefillsAtItsRateAndSaysWhenToRetry) {
  std::optional<Cell> cell;
  // 10 tokens, 5 per second.
  auto take = [&](double n, int64_t at) {
    return apply(make(FERRY_STATE_TAKE_BUCKET, "b", n, 10, 0, 5), cell, at);
  };
  EXPECT_TRUE(take(10, 0).applied);
  auto r = take(1, 0);
  EXPECT_FALSE(r.applied);
  EXPECT_EQ(r.retry_after_ms, 200u);
  EXPECT_TRUE(take(1, 200).applied);
  EXPECT_FALSE(take(2, 300).applied);  // 0.5 there
  EXPECT_TRUE(take(2, 600).applied);
  EXPECT_EQ(take(11, 60'000).retry_after_ms, 0u) << "more than the bucket holds: never";
  EXPECT_TRUE(take(-3, 60'000).applied);
  EXPECT_EQ(take(0, 60'000).value, 10) << "refunds never overfill";
}

TEST(StateRules, SlidingWindowWeighsThePreviousWindow) {
  std::optional<Cell> cell;
  auto take = [&](double n, int64_t at) {
    return apply(make(FERRY_STATE_TAKE_WINDOW, "w", n, 10, 1000), cell, at);
  };
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(take(1, 10'000 + i).applied);
  auto r = take(1, 10'500);
  EXPECT_FALSE(r.applied);
  // 10 in this window: room only once the next window has slid 10 % in.
  EXPECT_EQ(r.retry_after_ms, 600u);
  // 1.2 s: the previous window weighs 10 * 0.8 = 8, so two fit and a third not.
  EXPECT_TRUE(take(1, 11'200).applied);
  EXPECT_TRUE(take(1, 11'200).applied);
  r = take(1, 11'200);
  EXPECT_FALSE(r.applied);
  EXPECT_EQ(r.retry_after_ms, 100u);
  // Two windows later everything is forgotten.
  EXPECT_TRUE(take(10, 13'000).applied);
}

TEST(StateRules, SetIfAbsentGetAndExpiry) {
  std::optional<Cell> cell;
  auto set = make(FERRY_STATE_SET, "s", 0, 0, 100);
  set.value = "one";
  EXPECT_TRUE(apply(set, cell, 0).applied);
  set.value = "two";
  set.flags = FERRY_STATE_IF_ABSENT;
  EXPECT_FALSE(apply(set, cell, 50).applied);
  EXPECT_EQ(apply(make(FERRY_STATE_GET, "s"), cell, 99).data, "one");
  EXPECT_EQ(apply(make(FERRY_STATE_GET, "s"), cell, 100).status, FERRY_ERR_NOT_FOUND);
}

Result run(Store& store, Op op) {
  Result now;
  if (store.try_now(op, now)) return now;
  std::promise<Result> p;
  store.submit(std::move(op), [&](Result&& r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

TEST(MemoryStore, CountsExactlyUnderConcurrency) {
  config::StateConfig cfg;
  std::string error;
  auto store = Store::make(cfg, error);
  ASSERT_TRUE(store) << error;
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        if (run(*store, make(FERRY_STATE_ADD, "budget", 1, 2500)).applied) ++admitted;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 2500);
}

TEST(MemoryStore, RefusesNewKeysWhenFullInsteadOfEvictingLimits) {
  config::StateConfig cfg;
  cfg.memory_max_keys = 32;  // one per shard
  std::string error;
  auto store = Store::make(cfg, error);
  int refused = 0;
  for (int i = 0; i < 200; ++i) {
    std::string key = "k";
    key += std::to_string(i);  // not "k" + ...: g++ 12 warns falsely (-Wrestrict) on that
    if (run(*store, make(FERRY_STATE_ADD, key, 1, 10)).status == FERRY_ERR_UNAVAILABLE) ++refused;
  }
  EXPECT_GT(refused, 100);
  EXPECT_EQ(run(*store, make(FERRY_STATE_ADD, "k0", 1, 10)).value, 2) << "kept keys still count";
}

TEST(SqliteStore, SurvivesARestartAndScansByPrefix) {
  auto dir = std::filesystem::temp_directory_path() / ("ferry-state-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  config::StateConfig cfg;
  cfg.backend = "sqlite";
  cfg.sqlite_path = (dir / "state.db").string();
  std::string error;
  {
    auto store = Store::make(cfg, error);
    ASSERT_TRUE(store) << error;
    EXPECT_EQ(store->backend(), "sqlite");
    EXPECT_TRUE(run(*store, make(FERRY_STATE_ADD, "budget:team-a", 2.5, 100)).applied);
    EXPECT_TRUE(run(*store, make(FERRY_STATE_ADD, "budget:team-b", 1, 100)).applied);
    auto set = make(FERRY_STATE_SET, "other");
    set.value = "x";
    run(*store, set);
  }
  auto store = Store::make(cfg, error);
  ASSERT_TRUE(store) << error;
  EXPECT_EQ(run(*store, make(FERRY_STATE_ADD, "budget:team-a", 0.5, 100)).value, 3);
  auto scan = make(FERRY_STATE_SCAN, "budget:");
  scan.strip = 7;
  auto listed = nlohmann::json::parse(run(*store, scan).data);
  ASSERT_EQ(listed.size(), 2u) << listed.dump();
  EXPECT_EQ(listed[0]["key"], "team-a");
  EXPECT_EQ(listed[0]["value"], "3");
  EXPECT_EQ(listed[1]["key"], "team-b");
  store.reset();
  std::filesystem::remove_all(dir);
}

TEST(SqliteStore, ReportsAFileItCannotOpen) {
  config::StateConfig cfg;
  cfg.backend = "sqlite";
  cfg.sqlite_path = "/nonexistent-dir/state.db";
  std::string error;
  EXPECT_FALSE(Store::make(cfg, error));
  EXPECT_NE(error.find("/nonexistent-dir/state.db"), std::string::npos) << error;
}

}  // namespace
}  // namespace ferry::state
