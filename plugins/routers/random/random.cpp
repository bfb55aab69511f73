// random: a uniformly random provider first, the others in random order as the
// fallback chain. Providers the host sees as failing go last.
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Status;

class Random final : public ferry::sdk::Router {
 public:
  explicit Random(ferry::sdk::Config& c) { c.reject_unknown_keys({}); }

  Status route(ferry::sdk::Context&, const ferry::sdk::Json&, ferry::sdk::Route& route) override {
    std::vector<size_t> healthy;
    std::vector<size_t> failing;
    for (size_t i = 0; i < route.size(); ++i) (route[i].healthy ? healthy : failing).push_back(i);
    for (auto* group : {&healthy, &failing}) {
      // Fisher-Yates, drawing the next position each time.
      for (size_t left = group->size(); left > 0; --left) {
        size_t pick = ferry::sdk::random_below(left);
        route.push((*group)[pick]);
        (*group)[pick] = (*group)[left - 1];
      }
    }
    return Status::kContinue;
  }
};

}  // namespace

FERRY_ROUTER_PLUGIN(Random, "random", "1.0.0")
