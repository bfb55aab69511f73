// capability: only providers that can serve the request are candidates, in
// pipeline order. Providers declare what they can do in their attributes:
//   attributes = { capabilities = ["vision", "tools", "json_mode"], context_window = 128000 }
// and a request needs
//   vision     an image_url content part
//   tools      a non-empty tools array
//   json_mode  response_format json_object or json_schema
// plus room for its prompt (estimated) and max_tokens in the context window.
// A provider without a context_window is assumed large enough.
#include <algorithm>
#include <string>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Status;

class Capability final : public ferry::sdk::Router {
 public:
  explicit Capability(ferry::sdk::Config& c) {
    c.reject_unknown_keys({"default_output_tokens"});
    default_output_ = c.integer("/default_output_tokens", 256, 0, 10'000'000);
  }

  Status route(ferry::sdk::Context& ctx, const ferry::sdk::Json& request, ferry::sdk::Route& route) override {
    std::vector<std::string> needs;
    if (has_image(request)) needs.emplace_back("vision");
    if (request.size("/tools") > 0) needs.emplace_back("tools");
    auto format = request.string("/response_format/type");
    if (format == std::optional<std::string_view>("json_object") ||
        format == std::optional<std::string_view>("json_schema"))
      needs.emplace_back("json_mode");
    int64_t tokens = ferry::sdk::estimate_prompt_tokens(request) +
                     request.integer("/max_completion_tokens")
                         .value_or(request.integer("/max_tokens").value_or(default_output_));

    std::string missing;
    for (size_t i = 0; i < route.size(); ++i) {
      auto attributes = route.attributes(i);
      bool ok = true;
      for (const auto& need : needs) ok = ok && declares(attributes, need);
      if (auto window = attributes.integer("/context_window"); window && *window < tokens) ok = false;
      if (ok) route.push(i);
    }
    if (route.length() == 0) {
      std::string wanted;
      for (const auto& n : needs) wanted += (wanted.empty() ? "" : ", ") + n;
      return ctx.respond_error(
          400, "invalid_request_error",
          "no provider of this pipeline can serve this request (needs: " + (wanted.empty() ? "-" : wanted) +
              "; about " + std::to_string(tokens) + " tokens of context)",
          "no_capable_provider");
    }
    return Status::kContinue;
  }

 private:
  static bool has_image(const ferry::sdk::Json& request) {
    for (size_t i = 0, n = request.size("/messages"); i < n; ++i) {
      std::string m = "/messages/" + std::to_string(i) + "/content";
      for (size_t k = 0, parts = request.size(m); k < parts; ++k)
        if (request.string(m + "/" + std::to_string(k) + "/type") ==
            std::optional<std::string_view>("image_url"))
          return true;
    }
    return false;
  }
  static bool declares(const ferry::sdk::Json& attributes, const std::string& capability) {
    for (size_t i = 0, n = attributes.size("/capabilities"); i < n; ++i)
      if (attributes.string("/capabilities/" + std::to_string(i)) ==
          std::optional<std::string_view>(capability))
        return true;
    return false;
  }

  int64_t default_output_ = 256;
};

}  // namespace

FERRY_ROUTER_PLUGIN(Capability, "capability", "1.0.0")
