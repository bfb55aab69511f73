#include "core/resilience/breaker.h"

namespace ferry::resilience {

const char* Breaker::name(State s) {
  switch (s) {
    case State::kClosed: return "closed";
    case State::kOpen: return "open";
    case State::kHalfOpen: return "half-open";
  }
  return "?";
}

int64_t Breaker::slot_of(Clock::time_point t) const {
  auto width = std::max<int64_t>(1, config_.window.count() / static_cast<int64_t>(kBuckets));
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() / width;
}

void Breaker::totals(Clock::time_point now, uint32_t& ok, uint32_t& failed) const {
  ok = failed = 0;
  int64_t current = slot_of(now);
  for (const auto& b : buckets_) {
    if (b.slot > current - static_cast<int64_t>(kBuckets)) {
      ok += b.ok;
      failed += b.failed;
    }
  }
}

Breaker::State Breaker::state(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  if (state_ == State::kOpen && now - opened_at_ >= config_.cooldown) return State::kHalfOpen;
  return state_;
}

bool Breaker::available(Clock::time_point now) const {
  if (!config_.enabled) return true;
  std::lock_guard lock(mu_);
  switch (state_) {
    case State::kClosed: return true;
    case State::kOpen: return now - opened_at_ >= config_.cooldown;
    case State::kHalfOpen: return probes_in_flight_ < config_.probes;
  }
  return true;
}

bool Breaker::acquire(Clock::time_point now) {
  if (!config_.enabled) return true;
  std::lock_guard lock(mu_);
  if (state_ == State::kOpen) {
    if (now - opened_at_ < config_.cooldown) return false;
    state_ = State::kHalfOpen;
    probes_in_flight_ = 0;
  }
  if (state_ == State::kHalfOpen) {
    if (probes_in_flight_ >= config_.probes) return false;
    ++probes_in_flight_;
  }
  return true;
}

void Breaker::open(Clock::time_point now) {
  state_ = State::kOpen;
  opened_at_ = now;
  probes_in_flight_ = 0;
  consecutive_failures_ = 0;
  buckets_ = {};
}

std::optional<Breaker::State> Breaker::record(bool success, Clock::time_point now) {
  if (!config_.enabled) return std::nullopt;
  std::lock_guard lock(mu_);
  auto& b = buckets_[static_cast<size_t>(slot_of(now)) % kBuckets];
  if (b.slot != slot_of(now)) b = Bucket{slot_of(now), 0, 0};
  ++(success ? b.ok : b.failed);

  if (state_ == State::kHalfOpen) {
    if (probes_in_flight_ > 0) --probes_in_flight_;
    if (success) {
      state_ = State::kClosed;
      consecutive_failures_ = 0;
      buckets_ = {};
      return State::kClosed;
    }
    open(now);
    return State::kOpen;
  }
  if (state_ == State::kOpen) return std::nullopt;  // a late answer from before it opened

  consecutive_failures_ = success ? 0 : consecutive_failures_ + 1;
  if (success) return std::nullopt;
  uint32_t ok = 0;
  uint32_t failed = 0;
  totals(now, ok, failed);
  bool too_many_in_a_row =
      config_.consecutive_failures > 0 && consecutive_failures_ >= config_.consecutive_failures;
  bool rate_too_high = ok + failed >= config_.min_requests && config_.min_requests > 0 &&
                       static_cast<double>(failed) >= config_.error_rate * (ok + failed);
  if (too_many_in_a_row || rate_too_high) {
    open(now);
    return State::kOpen;
  }
  return std::nullopt;
}

double Breaker::error_rate(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  uint32_t ok = 0;
  uint32_t failed = 0;
  totals(now, ok, failed);
  return ok + failed ? static_cast<double>(failed) / (ok + failed) : 0.0;
}

Breaker::Clock::time_point Breaker::retry_at() const {
  std::lock_guard lock(mu_);
  return opened_at_ + config_.cooldown;
}

}  // namespace ferry::resilience
