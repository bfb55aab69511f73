// region: a custom routing strategy, written as any third party would. Each
// provider declares its region in its attributes; a request names the region
// it wants in a header (x-ferry-region by default). Providers of that region
// go first, the others follow as the fallback chain (or are left out with
// strict = true). Without the header, the router's default region applies.
#include <string>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Status;

class Region final : public ferry::sdk::Router {
 public:
  explicit Region(ferry::sdk::Config& config) {
    config.reject_unknown_keys({"header", "default", "strict"});
    header_ = config.string("/header", "x-ferry-region");
    default_ = config.string("/default", "");
    strict_ = config.boolean("/strict", false);
  }

  Status route(ferry::sdk::Context& ctx, const ferry::sdk::Json&, ferry::sdk::Route& route) override {
    std::string wanted(ctx.header(header_).value_or(default_));
    for (size_t i = 0; i < route.size(); ++i)
      if (wanted.empty() || route.attributes(i).string("/region") == std::optional<std::string_view>(wanted))
        route.push(i);
    if (!strict_ || wanted.empty())
      for (size_t i = 0; i < route.size(); ++i) route.push(i);  // the rest, as fallbacks
    if (route.length() == 0)
      return ctx.respond_error(400, "invalid_request_error", "no provider in region '" + wanted + "'",
                               "no_region");
    return Status::kContinue;
  }

 private:
  std::string header_;
  std::string default_;
  bool strict_ = false;
};

}  // namespace

FERRY_ROUTER_PLUGIN(Region, "region", "1.0.0")
