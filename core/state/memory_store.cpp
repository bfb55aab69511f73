// The default backend: a sharded hash map in this process. Operations finish
// inline under a shard lock (a few hundred nanoseconds), so a plugin on the
// memory backend never pauses.
#include <array>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/state/store.h"

namespace ferry::state {
namespace {

class MemoryStore final : public Store {
 public:
  explicit MemoryStore(const config::StateConfig& config)
      : max_per_shard_(std::max<uint64_t>(1, config.memory_max_keys / kShards)) {}

  bool try_now(const Op& op, Result& out) override {
    if (op.op == FERRY_STATE_SCAN) {
      out = scan(op);
      return true;
    }
    Shard& shard = shards_[std::hash<std::string>{}(op.key) % kShards];
    int64_t now = now_ms();
    std::lock_guard lock(shard.mu);
    auto it = shard.map.find(op.key);
    std::optional<Cell> cell;
    if (it != shard.map.end()) cell = std::move(it->second);
    bool creates = it == shard.map.end() && op.op != FERRY_STATE_GET && op.op != FERRY_STATE_DELETE;
    if (creates && shard.map.size() >= max_per_shard_) {
      sweep(shard, now);
      if (shard.map.size() >= max_per_shard_) {
        // Full of live keys: refusing is predictable, evicting a budget or a
        // rate-limit counter would silently lift a limit.
        out.status = FERRY_ERR_UNAVAILABLE;
        return true;
      }
      it = shard.map.end();
    }
    out = apply(op, cell, now);
    if (!cell) {
      if (it != shard.map.end()) shard.map.erase(it);
    } else if (it != shard.map.end()) {
      it->second = std::move(*cell);
    } else {
      shard.map.emplace(op.key, std::move(*cell));
      // Amortised clean-up of keys nobody reads any more.
      if (++shard.inserts % 4096 == 0) sweep(shard, now);
    }
    return true;
  }

  void submit(Op op, Callback done) override {
    Result r;
    try_now(op, r);
    done(std::move(r));
  }
  std::string_view backend() const override { return "memory"; }
  bool available() const override { return true; }

 private:
  static constexpr size_t kShards = 32;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Cell> map;
    uint64_t inserts = 0;
  };

  static void sweep(Shard& shard, int64_t now) {
    std::erase_if(shard.map, [now](const auto& kv) {
      return kv.second.expires_at_ms && kv.second.expires_at_ms <= now;
    });
  }

  Result scan(const Op& op) {
    size_t max = op.limit > 0 ? static_cast<size_t>(op.limit) : 1000;
    int64_t now = now_ms();
    nlohmann::json out = nlohmann::json::array();
    for (auto& shard : shards_) {
      std::lock_guard lock(shard.mu);
      for (const auto& [key, cell] : shard.map) {
        if (out.size() >= max) break;
        if (!key.starts_with(op.key) || (cell.expires_at_ms && cell.expires_at_ms <= now)) continue;
        out.push_back({{"key", key.substr(std::min(op.strip, key.size()))}, {"value", cell.value}});
      }
    }
    Result r;
    r.data = out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    r.value = static_cast<double>(out.size());
    return r;
  }

  const uint64_t max_per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace

std::unique_ptr<Store> make_memory_store(const config::StateConfig& config) {
  return std::make_unique<MemoryStore>(config);
}

}  // namespace ferry::state
