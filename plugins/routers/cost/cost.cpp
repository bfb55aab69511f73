// cost: the cheapest eligible provider first. A request's cost on a provider
// is estimated from its prompt (about four characters a token) and its
// max_tokens (or expected_output_tokens) at the provider's price per million
// input and output tokens. Only providers of the requested quality tier are
// eligible: the router's `tier`, or the request's x-ferry-tier header.
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Status;

struct Price {
  double input = 0;   // per million tokens
  double output = 0;  // per million tokens
};

class Cost final : public ferry::sdk::Router {
 public:
  explicit Cost(ferry::sdk::Config& c) {
    c.reject_unknown_keys({"prices", "tier", "expected_output_tokens"});
    tier_ = c.string("/tier", "");
    expected_output_ = c.integer("/expected_output_tokens", 256, 0, 10'000'000);
    auto providers = c.pipeline_providers();
    for (const auto& name : c.keys("/prices")) {
      std::string ptr = "/prices/" + name;
      bool known =
          providers.empty() || std::find(providers.begin(), providers.end(), name) != providers.end();
      if (!known) c.error(ptr, "'" + name + "' is not a provider of this pipeline");
      Price p{c.number(ptr + "/input", -1, 0, 1e6), c.number(ptr + "/output", -1, 0, 1e6)};
      if (p.input < 0 || p.output < 0)
        c.error(ptr, "needs { input = <$ per 1M tokens>, output = <$ per 1M tokens> }");
      prices_[name] = p;
    }
  }

  Status route(ferry::sdk::Context& ctx, const ferry::sdk::Json& request, ferry::sdk::Route& route) override {
    std::string tier = std::string(ctx.header("x-ferry-tier").value_or(tier_));
    auto input = static_cast<double>(ferry::sdk::estimate_prompt_tokens(request));
    auto output =
        static_cast<double>(request.integer("/max_completion_tokens")
                                .value_or(request.integer("/max_tokens").value_or(expected_output_)));
    struct Entry {
      size_t index;
      double cost;  // unknown prices sort last
    };
    std::vector<Entry> entries;
    for (size_t i = 0; i < route.size(); ++i) {
      auto attributes = route.attributes(i);
      if (!tier.empty() && attributes.string("/tier") != std::optional<std::string_view>(tier)) continue;
      auto price = price_of(route.name(i), attributes);
      double cost = price ? input / 1e6 * price->input + output / 1e6 * price->output : 1e300;
      entries.push_back({i, cost});
    }
    std::stable_sort(entries.begin(), entries.end(),
                     [](const Entry& a, const Entry& b) { return a.cost < b.cost; });
    for (const auto& e : entries) route.push(e.index);
    return Status::kContinue;
  }

 private:
  // The router's price table wins; else the provider's attributes.price.
  std::optional<Price> price_of(std::string_view name, const ferry::sdk::Json& attributes) const {
    if (auto it = prices_.find(name); it != prices_.end()) return it->second;
    auto in = attributes.number("/price/input");
    auto out = attributes.number("/price/output");
    if (in && out) return Price{*in, *out};
    return std::nullopt;
  }

  std::string tier_;
  int64_t expected_output_ = 256;
  std::map<std::string, Price, std::less<>> prices_;
};

}  // namespace

FERRY_ROUTER_PLUGIN(Cost, "cost", "1.0.0")
