// least-latency: power of two choices on live latency. Two healthy providers
// are drawn at random and the faster (smoothed time to first byte, or total
// latency) goes first; always taking the single fastest would send every
// request to one backend until it slows down, then stampede the next. The
// rest follow by latency. A provider with no measurement yet counts as fastest
// so it gets measured, and `explore` sends a share of requests to a random
// provider so a recovered one is noticed.
#include <algorithm>
#include <string>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Status;

class LeastLatency final : public ferry::sdk::Router {
 public:
  explicit LeastLatency(ferry::sdk::Config& c) {
    c.reject_unknown_keys({"metric", "explore"});
    std::string metric = c.string("/metric", "ttfb");
    if (metric == "total")
      use_ttfb_ = false;
    else if (metric != "ttfb")
      c.error("/metric", "must be \"ttfb\" (time to first byte) or \"total\"");
    explore_ = c.number("/explore", 0.02, 0, 1);
  }

  Status route(ferry::sdk::Context&, const ferry::sdk::Json&, ferry::sdk::Route& route) override {
    std::vector<size_t> healthy;
    std::vector<size_t> failing;
    for (size_t i = 0; i < route.size(); ++i) (route[i].healthy ? healthy : failing).push_back(i);
    auto latency = [&](size_t i) { return use_ttfb_ ? route[i].ttfb_ewma_us : route[i].latency_ewma_us; };
    if (!healthy.empty()) {
      size_t first;
      if (healthy.size() == 1) {
        first = healthy[0];
      } else if (ferry::sdk::random_unit() < explore_) {
        first = healthy[ferry::sdk::random_below(healthy.size())];
      } else {
        size_t a = ferry::sdk::random_below(healthy.size());
        size_t b = ferry::sdk::random_below(healthy.size() - 1);
        if (b >= a) ++b;
        first = latency(healthy[a]) <= latency(healthy[b]) ? healthy[a] : healthy[b];
      }
      route.push(first);
    }
    for (auto* group : {&healthy, &failing}) {
      std::stable_sort(group->begin(), group->end(),
                       [&](size_t x, size_t y) { return latency(x) < latency(y); });
      for (size_t i : *group) route.push(i);  // push() skips the one already first
    }
    return Status::kContinue;
  }

 private:
  bool use_ttfb_ = true;
  double explore_ = 0.02;
};

}  // namespace

FERRY_ROUTER_PLUGIN(LeastLatency, "least-latency", "1.0.0")
