// openai: the OpenAI API's front door. Its dialect is the canonical one, so a
// request passes through as it came and answers leave as the engine wrote
// them; only errors are (re)written, in OpenAI's error shape.
#include <array>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Config;
using ferry::sdk::Context;
using ferry::sdk::ErrorInfo;
using ferry::sdk::Inbound;
using ferry::sdk::Json;
using ferry::sdk::JsonWriter;
using ferry::sdk::Output;
using ferry::sdk::Status;

constexpr std::array<ferry_route, 3> kRoutes{{
    {sizeof(ferry_route), "POST", "/v1/chat/completions", nullptr, FERRY_OP_CHAT},
    {sizeof(ferry_route), "POST", "/v1/embeddings", nullptr, FERRY_OP_EMBEDDINGS},
    {sizeof(ferry_route), "GET", "/v1/models", nullptr, FERRY_OP_MODELS},
}};

class OpenAIFrontend final : public ferry::sdk::Frontend {
 public:
  explicit OpenAIFrontend(Config& config) { config.reject_unknown_keys({}); }

  std::span<const ferry_route> routes() const override { return kRoutes; }

  // The body is already a canonical request; the engine checks its fields.
  Status decode(Context&, const Inbound&, Json&, Output&) override { return ferry::sdk::kOk; }

  Status response(Context&, const Json& response, Output& out) override {
    return out.json(200, response.dump());
  }
  Status chunk(Context&, const Json& chunk, Output& out) override { return out.event({}, chunk.dump()); }
  Status end(Context&, Output& out) override { return out.event({}, "[DONE]"); }

  Status error(Context&, const ErrorInfo& e, Output& out) override {
    JsonWriter w;
    w.begin_object().key("error").begin_object();
    w.key("message").value(e.message).key("type").value(e.type).key("code");
    if (e.code.empty())
      w.null();
    else
      w.value(e.code);
    w.end_object().end_object();
    if (e.in_stream) return out.event({}, w.str());
    if (!e.retry_after.empty()) out.header("retry-after", e.retry_after);
    return out.json(e.status, w.str());
  }
};

}  // namespace

FERRY_FRONTEND_PLUGIN(OpenAIFrontend, "openai", "1.0.0")
