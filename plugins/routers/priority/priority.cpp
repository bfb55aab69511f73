// priority: the pipeline's provider list is the fallback chain. Providers the
// host currently sees as failing move to the end of the chain instead of
// leaving it, so they are still tried when everything else fails.
#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Status;

class Priority final : public ferry::sdk::Router {
 public:
  explicit Priority(ferry::sdk::Config& c) {
    c.reject_unknown_keys({"demote_unhealthy"});
    demote_unhealthy_ = c.boolean("/demote_unhealthy", true);
  }

  Status route(ferry::sdk::Context&, const ferry::sdk::Json&, ferry::sdk::Route& route) override {
    for (size_t i = 0; i < route.size(); ++i)
      if (!demote_unhealthy_ || route[i].healthy) route.push(i);
    for (size_t i = 0; i < route.size(); ++i) route.push(i);  // the rest, in order
    return Status::kContinue;
  }

 private:
  bool demote_unhealthy_ = true;
};

}  // namespace

FERRY_ROUTER_PLUGIN(Priority, "priority", "1.0.0")
