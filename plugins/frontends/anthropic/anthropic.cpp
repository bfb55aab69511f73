// anthropic: the Anthropic Messages API's front door. Anthropic clients (the
// official SDKs, Claude Code, the Vercel AI SDK's Anthropic provider) reach
// every pipeline through it: requests are translated into the canonical
// request, answers and streams back into Anthropic's shapes and events.
#include <array>

#include <ferry/plugin.hpp>

#include "decode.h"
#include "encode.h"

namespace {

using ferry::sdk::Config;
using ferry::sdk::Context;
using ferry::sdk::ErrorInfo;
using ferry::sdk::Inbound;
using ferry::sdk::Json;
using ferry::sdk::JsonWriter;
using ferry::sdk::Output;
using ferry::sdk::Status;

enum Route : size_t { kMessages, kCountTokens, kModels };
constexpr std::array<ferry_route, 3> kRoutes{{
    {sizeof(ferry_route), "POST", "/v1/messages", nullptr, FERRY_OP_CHAT},
    {sizeof(ferry_route), "POST", "/v1/messages/count_tokens", nullptr, FERRY_OP_NONE},
    // Anthropic's clients send anthropic-version on every request; OpenAI's never do.
    {sizeof(ferry_route), "GET", "/v1/models", "anthropic-version", FERRY_OP_MODELS},
}};

// What count_tokens answers when no provider counts for it: the gateway's
// estimate of the translated request, its tools' definitions included.
int64_t estimate_tokens(const Json& canonical) {
  int64_t tools = static_cast<int64_t>(canonical.raw("/tools").value_or("").size());
  return ferry::sdk::estimate_prompt_tokens(canonical) + (tools + 3) / 4;
}

class AnthropicFrontend final : public ferry::sdk::Frontend {
 public:
  // Its encoder takes an Anthropic upstream's own events (pass-through).
  using encoder_type = ferry_anthropic::StreamEncoder;
  explicit AnthropicFrontend(Config& config) { config.reject_unknown_keys({}); }

  std::span<const ferry_route> routes() const override { return kRoutes; }

  Status decode(Context&, const Inbound& in, Json& request, Output& out) override {
    if (in.route == kModels) return ferry::sdk::kOk;
    auto decoded = ferry_anthropic::to_canonical(request, in.route == kCountTokens);
    if (!decoded.error.empty()) return out.refuse(400, "invalid_request_error", decoded.error);
    if (request.set("", decoded.canonical) != ferry::sdk::kOk)
      return out.refuse(400, "invalid_request_error", "the request could not be translated");
    if (in.route != kCountTokens) return ferry::sdk::kOk;
    // An estimate, and said to be one: no provider was asked.
    out.header("x-ferry-token-count", "estimate");
    JsonWriter w;
    w.begin_object().key("input_tokens").value(estimate_tokens(request)).end_object();
    out.json(200, w.str());
    return Status::kRespond;
  }

  std::unique_ptr<ferry::sdk::Encoder> new_encoder(Context&) override {
    return std::make_unique<ferry_anthropic::StreamEncoder>();
  }
};

}  // namespace

FERRY_FRONTEND_PLUGIN(AnthropicFrontend, "anthropic", "1.0.0")
