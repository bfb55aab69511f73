// Several upstream API keys for one provider (header-only, on the C++ wrapper).
//
//   [providers.openai]
//   api_key_envs = ["OPENAI_KEY_A", "OPENAI_KEY_B"]   # or api_key_env = "..." for one
//
// Requests take the keys in turn, so their quotas add up. A key the upstream
// refuses (401/403) or rate-limits (429) is set aside, for Retry-After or a
// minute after a 429 and five minutes after a refusal, and the others carry
// on; when every key is set aside, the one due back first is used. Which key
// served a request is its tag "upstream_key" (its position, from 1): in the
// access log, never the key.
#pragma once

#include <algorithm>
#include <atomic>
#include <charconv>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <ferry/plugin.hpp>

namespace ferry::sdk {

class KeyRing {
 public:
  KeyRing() = default;
  KeyRing(KeyRing&& o) noexcept : keys_(std::move(o.keys_)), next_(o.next_.load()) {}
  KeyRing& operator=(KeyRing&& o) noexcept {
    keys_ = std::move(o.keys_);
    next_ = o.next_.load();
    return *this;
  }

  // Reads `api_key_env` (one variable) or `api_key_envs` (several) from the
  // provider's options; `fallback_env` is used when neither is set (empty:
  // no key, for servers that need none). Missing variables are config errors.
  // Each key is kept as `prefix` + key: the header value to send.
  static KeyRing from_config(Config& c, const std::string& fallback_env = {},
                             const std::string& prefix = {}) {
    KeyRing ring;
    std::vector<std::pair<std::string, std::string>> names;  // env, pointer
    if (c.json().has("/api_key_env") && c.json().has("/api_key_envs"))
      c.error("/api_key_envs", "set api_key_env (one key) or api_key_envs (several), not both");
    if (c.json().has("/api_key_envs")) {
      if (c.json().type("/api_key_envs") != FERRY_JSON_ARRAY || c.json().size("/api_key_envs") == 0)
        c.error("/api_key_envs", "must be a non-empty array of environment variable names");
      for (size_t i = 0, n = c.json().size("/api_key_envs"); i < n; ++i)
        names.emplace_back(c.string("/api_key_envs/" + std::to_string(i)),
                           "/api_key_envs/" + std::to_string(i));
    } else {
      std::string env = c.string("/api_key_env", fallback_env);
      if (!env.empty()) names.emplace_back(env, "/api_key_env");
    }
    for (const auto& [env, at] : names) {
      auto key = env.empty() ? std::nullopt : secret(env);
      if (!key || key->empty())
        c.error(at, "environment variable " + env + " is not set (it should hold the API key)");
      else
        ring.keys_.push_back(std::make_unique<Key>(prefix + std::string(*key)));
    }
    return ring;
  }

  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }

  // The key for this request, recorded in its "upstream_key" tag; empty when
  // the provider has none.
  std::string_view pick(Context& ctx) {
    if (keys_.empty()) return {};
    uint64_t now = monotonic_ns();
    size_t start = next_.fetch_add(1, std::memory_order_relaxed);
    size_t chosen = start % keys_.size();
    uint64_t soonest = UINT64_MAX;
    for (size_t i = 0; i < keys_.size(); ++i) {
      size_t k = (start + i) % keys_.size();
      uint64_t aside = keys_[k]->aside_until.load(std::memory_order_relaxed);
      if (aside <= now) {
        chosen = k;
        break;
      }
      if (aside < soonest) {
        soonest = aside;
        chosen = k;
      }
    }
    if (keys_.size() > 1) ctx.set_tag("upstream_key", std::to_string(chosen + 1));
    return keys_[chosen]->value;
  }

  // A key for a request that has no context (a health probe): the first one
  // not set aside.
  std::string_view any() const {
    uint64_t now = monotonic_ns();
    for (const auto& k : keys_)
      if (k->aside_until.load(std::memory_order_relaxed) <= now) return k->value;
    return keys_.empty() ? std::string_view() : std::string_view(keys_.front()->value);
  }

  // The upstream's answer to the key this request used: a refusal or a rate
  // limit sets it aside.
  void answered(const Context& ctx, const HttpResponse& r) {
    if (keys_.size() < 2 || (r.status != 401 && r.status != 403 && r.status != 429)) return;
    auto tag = ctx.tag("upstream_key");
    size_t index = 0;
    if (!tag || std::from_chars(tag->data(), tag->data() + tag->size(), index).ec != std::errc() ||
        index == 0 || index > keys_.size())
      return;
    uint64_t seconds = r.status == 429 ? 60 : 300;
    if (auto after = r.header("retry-after")) {
      uint64_t s = 0;
      if (std::from_chars(after->data(), after->data() + after->size(), s).ec == std::errc() && s > 0)
        seconds = std::min<uint64_t>(s, 3600);
    }
    keys_[index - 1]->aside_until.store(monotonic_ns() + seconds * 1'000'000'000, std::memory_order_relaxed);
    metric(FERRY_METRIC_COUNTER, "ferry_upstream_keys_set_aside_total", 1);
  }

 private:
  struct Key {
    explicit Key(std::string v) : value(std::move(v)) {}
    std::string value;
    std::atomic<uint64_t> aside_until{0};  // monotonic ns
  };
  std::vector<std::unique_ptr<Key>> keys_;  // pointers: atomics do not move
  std::atomic<size_t> next_{0};
};

}  // namespace ferry::sdk
