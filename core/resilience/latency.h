#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>

namespace ferry::resilience {

// Recent latency percentiles of a provider: a histogram with buckets √2 apart
// (≈ ±20 % resolution), over the current and the previous minute.
class LatencyWindow {
 public:
  using Clock = std::chrono::steady_clock;
  void record(uint64_t us, Clock::time_point now = Clock::now());
  // The q-quantile (0 < q < 1) in microseconds, 0 when there is no data.
  uint64_t quantile(double q, Clock::time_point now = Clock::now()) const;

 private:
  static constexpr size_t kBuckets = 48;  // up to 50 µs * 2^24 ≈ 14 minutes
  static constexpr auto kPeriod = std::chrono::seconds(60);
  static uint64_t upper_bound(size_t bucket);
  static size_t bucket_of(uint64_t us);
  void rotate(Clock::time_point now) const;

  mutable std::mutex mu_;
  mutable std::array<uint32_t, kBuckets> current_{};
  mutable std::array<uint32_t, kBuckets> previous_{};
  mutable Clock::time_point period_start_{};
};

}  // namespace ferry::resilience
