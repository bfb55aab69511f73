// least-busy: the provider with the fewest requests in flight (counted by the
// host across all workers) first, then the others by the same measure. Ties
// are broken at random so equal providers share the load.
#include <algorithm>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Status;

class LeastBusy final : public ferry::sdk::Router {
 public:
  explicit LeastBusy(ferry::sdk::Config& c) { c.reject_unknown_keys({}); }

  Status route(ferry::sdk::Context&, const ferry::sdk::Json&, ferry::sdk::Route& route) override {
    struct Entry {
      bool failing;
      uint32_t in_flight;
      uint64_t tie;
      size_t index;
    };
    std::vector<Entry> entries;
    entries.reserve(route.size());
    for (size_t i = 0; i < route.size(); ++i)
      entries.push_back({route[i].healthy == 0, route[i].in_flight, ferry::sdk::random_u64(), i});
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      if (a.failing != b.failing) return !a.failing;
      if (a.in_flight != b.in_flight) return a.in_flight < b.in_flight;
      return a.tie < b.tie;
    });
    for (const auto& e : entries) route.push(e.index);
    return Status::kContinue;
  }
};

}  // namespace

FERRY_ROUTER_PLUGIN(LeastBusy, "least-busy", "1.0.0")
