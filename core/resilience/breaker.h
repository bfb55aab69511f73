#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace ferry::resilience {

struct BreakerConfig {
  bool enabled = true;
  uint32_t consecutive_failures = 5;           // open after this many failures in a row
  double error_rate = 0.5;                     // or when this share of the window failed ...
  uint32_t min_requests = 20;                  // ... and the window holds at least this many
  std::chrono::milliseconds window{30'000};    // the error-rate window
  std::chrono::milliseconds cooldown{10'000};  // open -> half-open
  uint32_t probes = 1;                         // requests let through at once while half-open
};

// A circuit breaker for one provider (and model), shared by all workers.
//
//   closed --(N failures in a row, or error rate over the window)--> open
//   open --(cooldown)--> half-open: up to `probes` requests at once
//   half-open --(probe succeeds)--> closed, --(probe fails)--> open again
//
// available() is what routing asks ("may this provider be a candidate?");
// acquire() is taken just before an attempt and may still say no when the
// half-open probe slots were taken meanwhile.
class Breaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };
  using Clock = std::chrono::steady_clock;

  explicit Breaker(BreakerConfig config = {}) : config_(config) {}

  bool available(Clock::time_point now = Clock::now()) const;
  bool acquire(Clock::time_point now = Clock::now());
  // The result of an attempt that acquire() allowed. Returns the new state if
  // this call changed it (for events and logs).
  std::optional<State> record(bool success, Clock::time_point now = Clock::now());

  State state(Clock::time_point now = Clock::now()) const;
  double error_rate(Clock::time_point now = Clock::now()) const;
  // When an open breaker lets the next probe through.
  Clock::time_point retry_at() const;
  const BreakerConfig& config() const { return config_; }

  static const char* name(State s);

 private:
  static constexpr size_t kBuckets = 10;
  struct Bucket {
    int64_t slot = -1;  // window / kBuckets periods since the epoch
    uint32_t ok = 0;
    uint32_t failed = 0;
  };
  int64_t slot_of(Clock::time_point t) const;
  void totals(Clock::time_point now, uint32_t& ok, uint32_t& failed) const;
  void open(Clock::time_point now);

  BreakerConfig config_;
  mutable std::mutex mu_;
  State state_ = State::kClosed;
  uint32_t consecutive_failures_ = 0;
  uint32_t probes_in_flight_ = 0;
  Clock::time_point opened_at_{};
  std::array<Bucket, kBuckets> buckets_{};
};

}  // namespace ferry::resilience
