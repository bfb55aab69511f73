// weighted: the first provider is drawn in proportion to its weight; the
// fallback chain continues the draw without replacement, so a 70/20/10 split
// also decides who is tried second. Failing providers (host health) go last.
#include <map>
#include <string>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Status;

class Weighted final : public ferry::sdk::Router {
 public:
  explicit Weighted(ferry::sdk::Config& c) {
    c.reject_unknown_keys({"weights"});
    if (c.json().type("/weights") != FERRY_JSON_OBJECT) {
      c.error("/weights", "is required: a table of provider name to weight, e.g. { a = 70, b = 30 }");
      return;
    }
    double total = 0;
    for (const auto& [name, w] : c.provider_numbers("/weights", 0, 1e9)) {
      weights_[name] = w;
      total += w;
    }
    for (const auto& p : c.pipeline_providers())
      if (!weights_.count(p))
        c.error("/weights", "no weight for provider '" + p + "' (give it 0 to keep it as a fallback only)");
    if (total <= 0) c.error("/weights", "at least one weight must be above 0");
  }

  Status route(ferry::sdk::Context&, const ferry::sdk::Json&, ferry::sdk::Route& route) override {
    std::vector<Entry> healthy;
    std::vector<Entry> rest;
    for (size_t i = 0; i < route.size(); ++i) {
      auto it = weights_.find(std::string(route.name(i)));
      double w = it == weights_.end() ? 0 : it->second;
      (route[i].healthy && w > 0 ? healthy : rest).push_back({i, w});
    }
    draw(healthy, route);
    draw(rest, route);
    return Status::kContinue;
  }

 private:
  struct Entry {
    size_t index;
    double weight;
  };

  // Weighted draws without replacement; zero weights keep their list order.
  static void draw(std::vector<Entry>& entries, ferry::sdk::Route& route) {
    while (!entries.empty()) {
      double total = 0;
      for (const auto& e : entries) total += e.weight;
      size_t pick = 0;
      if (total > 0) {
        double r = ferry::sdk::random_unit() * total;
        while (pick + 1 < entries.size() && r >= entries[pick].weight) r -= entries[pick++].weight;
      }
      route.push(entries[pick].index);
      entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(pick));
    }
  }

  std::map<std::string, double, std::less<>> weights_;
};

}  // namespace

FERRY_ROUTER_PLUGIN(Weighted, "weighted", "1.0.0")
