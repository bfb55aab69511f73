#include "core/state/store.h"

#include "core/crypto/sealer.h"
#include "core/state/sealed_store.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace ferry::state {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string format_number(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("0");
}

namespace {

// Reads up to three space-separated numbers; missing ones stay as they are.
void parse_numbers(std::string_view text, double* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    if (text.empty()) return;
    double v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc()) return;
    out[i] = v;
    text.remove_prefix(static_cast<size_t>(p - text.data()));
  }
}

// Rounded up, but not for floating-point dust: 100.00000000000006 ms is 100.
uint64_t ms_ceil(double ms) { return ms <= 0 ? 0 : static_cast<uint64_t>(std::ceil(ms - 1e-6)); }

Result add(const Op& op, std::optional<Cell>& cell, int64_t now) {
  Result r;
  double current = 0;
  if (cell) parse_numbers(cell->value, &current, 1);
  double next = current + op.amount;
  if (op.amount > 0 && next > op.limit && !(op.flags & FERRY_STATE_FORCE)) {
    r.value = current;
    return r;
  }
  if (!cell) cell = Cell{{}, op.ttl_ms ? now + static_cast<int64_t>(op.ttl_ms) : 0};
  cell->value = format_number(next);
  r.applied = true;
  r.value = next;
  return r;
}

// Cell text: "tokens last_refill_ms".
Result take_bucket(const Op& op, std::optional<Cell>& cell, int64_t now) {
  Result r;
  double state[2] = {op.limit, static_cast<double>(now)};
  if (cell) parse_numbers(cell->value, state, 2);
  double tokens = state[0];
  double elapsed = std::max(0.0, static_cast<double>(now) - state[1]);
  tokens = std::min(op.limit, tokens + elapsed / 1000.0 * op.rate);
  if (op.amount <= tokens || op.amount <= 0 || (op.flags & FERRY_STATE_FORCE)) {
    tokens = std::min(op.limit, tokens - op.amount);
    r.applied = true;
  } else if (op.amount <= op.limit && op.rate > 0) {
    r.retry_after_ms = ms_ceil((op.amount - tokens) / op.rate * 1000.0);
  }
  r.value = tokens;
  // An idle bucket refills completely; a missing one is full, so it may go.
  double to_full = op.rate > 0 ? (op.limit - tokens) / op.rate * 1000.0 : 86'400'000.0;
  cell = Cell{format_number(tokens) + " " + std::to_string(now),
              now + static_cast<int64_t>(std::min(to_full, 86'400'000.0 * 30)) + 1000};
  return r;
}

// Cell text: "window_start_ms current previous". The count over the sliding
// window is estimated as previous * (unelapsed share of the window) + current.
Result take_window(const Op& op, std::optional<Cell>& cell, int64_t now) {
  Result r;
  const double w = static_cast<double>(std::max<uint64_t>(op.ttl_ms, 1));
  const int64_t wi = static_cast<int64_t>(w);
  double state[3] = {static_cast<double>(now - now % wi), 0, 0};
  if (cell) parse_numbers(cell->value, state, 3);
  auto start = static_cast<int64_t>(state[0]);
  double current = state[1], previous = state[2];
  if (now >= start + wi) {
    previous = now < start + 2 * wi ? current : 0;
    current = 0;
    start = now - now % wi;
  }
  double elapsed = static_cast<double>(now - start);
  double estimate = previous * (w - elapsed) / w + current;
  if (op.amount <= 0 || estimate + op.amount <= op.limit || (op.flags & FERRY_STATE_FORCE)) {
    current = std::max(0.0, current + op.amount);
    estimate += op.amount;
    r.applied = true;
  } else if (op.amount <= op.limit) {
    if (current + op.amount <= op.limit) {
      // Room comes as the previous window slides out.
      double needed = w * (1.0 - (op.limit - current - op.amount) / previous);
      r.retry_after_ms = ms_ceil(needed - elapsed);
    } else {
      // Only in the next window, once enough of this one has slid out.
      double needed = current > 0 ? w * (1.0 - (op.limit - op.amount) / current) : 0;
      r.retry_after_ms = ms_ceil(w - elapsed + std::max(0.0, needed));
    }
    r.retry_after_ms = std::max<uint64_t>(r.retry_after_ms, 1);
  }
  r.value = std::max(0.0, op.limit - estimate);
  cell = Cell{std::to_string(start) + " " + format_number(current) + " " + format_number(previous),
              start + 2 * wi};
  return r;
}

}  // namespace

Result apply(const Op& op, std::optional<Cell>& cell, int64_t now) {
  if (cell && cell->expires_at_ms && cell->expires_at_ms <= now) cell.reset();
  Result r;
  switch (op.op) {
    case FERRY_STATE_GET:
      if (cell)
        r.data = cell->value;
      else
        r.status = FERRY_ERR_NOT_FOUND;
      return r;
    case FERRY_STATE_SET:
      if (cell && (op.flags & FERRY_STATE_IF_ABSENT)) return r;
      cell = Cell{op.value, op.ttl_ms ? now + static_cast<int64_t>(op.ttl_ms) : 0};
      r.applied = true;
      return r;
    case FERRY_STATE_DELETE:
      r.applied = cell.has_value();
      cell.reset();
      return r;
    case FERRY_STATE_ADD: return add(op, cell, now);
    case FERRY_STATE_TAKE_BUCKET: return take_bucket(op, cell, now);
    case FERRY_STATE_TAKE_WINDOW: return take_window(op, cell, now);
    default: r.status = FERRY_ERR_INVALID_ARGUMENT; return r;
  }
}

std::unique_ptr<Store> make_memory_store(const config::StateConfig& config);
std::unique_ptr<Store> make_redis_store(const config::StateConfig& config, std::string& error);
std::unique_ptr<Store> make_sqlite_store(const config::StateConfig& config, std::string& error);

std::unique_ptr<Store> Store::make(const config::StateConfig& config, std::string& error) {
  if (config.backend != "redis" && config.backend != "sqlite") return make_memory_store(config);
  // Encryption at rest: for what leaves the process (memory holds nothing at rest).
  std::optional<crypto::Sealer> sealer;
  if (!config.encryption_key_env.empty()) {
    sealer = crypto::Sealer::from_env(config.encryption_key_env, config.decryption_key_envs, error);
    if (!sealer) return nullptr;
  }
  auto store = config.backend == "redis" ? make_redis_store(config, error) : make_sqlite_store(config, error);
  if (store && sealer) return make_sealed_store(std::move(store), std::move(*sealer));
  return store;
}

}  // namespace ferry::state
