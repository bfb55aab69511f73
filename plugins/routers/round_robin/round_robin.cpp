// round-robin: each request starts at the next provider; the others follow in
// list order as its fallback chain. One atomic counter shared by all workers.
#include <atomic>
#include <cstdint>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Status;

class RoundRobin final : public ferry::sdk::Router {
 public:
  explicit RoundRobin(ferry::sdk::Config& c) { c.reject_unknown_keys({}); }

  Status route(ferry::sdk::Context&, const ferry::sdk::Json&, ferry::sdk::Route& route) override {
    const size_t n = route.size();
    if (n == 0) return Status::kContinue;
    size_t start = static_cast<size_t>(next_.fetch_add(1, std::memory_order_relaxed) % n);
    for (size_t k = 0; k < n; ++k) route.push((start + k) % n);
    return Status::kContinue;
  }

 private:
  std::atomic<uint64_t> next_{0};
};

}  // namespace

FERRY_ROUTER_PLUGIN(RoundRobin, "round-robin", "1.0.0")
