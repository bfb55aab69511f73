#include "core/resilience/latency.h"

#include <cmath>

namespace ferry::resilience {

uint64_t LatencyWindow::upper_bound(size_t bucket) {
  return static_cast<uint64_t>(50.0 * std::pow(2.0, static_cast<double>(bucket + 1) / 2.0));
}

size_t LatencyWindow::bucket_of(uint64_t us) {
  size_t b = 0;
  while (b + 1 < kBuckets && us > upper_bound(b)) ++b;
  return b;
}

void LatencyWindow::rotate(Clock::time_point now) const {
  if (now - period_start_ < kPeriod) return;
  previous_ = now - period_start_ < 2 * kPeriod ? current_ : std::array<uint32_t, kBuckets>{};
  current_ = {};
  period_start_ = now;
}

void LatencyWindow::record(uint64_t us, Clock::time_point now) {
  std::lock_guard lock(mu_);
  rotate(now);
  ++current_[bucket_of(us)];
}

uint64_t LatencyWindow::quantile(double q, Clock::time_point now) const {
  std::lock_guard lock(mu_);
  rotate(now);
  uint64_t total = 0;
  for (size_t i = 0; i < kBuckets; ++i) total += current_[i] + previous_[i];
  if (total == 0) return 0;
  auto want = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += current_[i] + previous_[i];
    if (seen >= want) return upper_bound(i);
  }
  return upper_bound(kBuckets - 1);
}

}  // namespace ferry::resilience
