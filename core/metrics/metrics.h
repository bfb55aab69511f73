#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ferry::metrics {

// Prometheus-style series: "name" or "name{label=\"v\"}". Lookups take a
// shared lock and updates are atomic, so worker threads do not serialize.
class Registry {
 public:
  static Registry& global();

  void add(std::string_view series, double value);
  void set(std::string_view series, double value);
  // Histogram in seconds (or bytes) with fixed exponential buckets.
  void observe(std::string_view series, double value);
  // The Prometheus text exposition format.
  std::string render() const;

 private:
  static constexpr std::array<double, 14> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Series {
    Kind kind;
    std::atomic<double> value{0};  // counter/gauge value, histogram sum
    std::atomic<uint64_t> count{0};
    std::array<std::atomic<uint64_t>, kBuckets.size()> buckets{};
  };
  Series& series(std::string_view name, Kind kind);

  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Series>> series_;
};

}  // namespace ferry::metrics
