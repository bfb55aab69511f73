// openai: any server that speaks the OpenAI chat-completions API (OpenAI,
// Groq, DeepSeek, Together, Mistral, vLLM, Ollama's /v1, ...). The canonical
// format is this API, so the adapter mostly passes bytes through: the host's
// parsed request is sent as is, and answers and chunks are forwarded verbatim.
#include <string>
#include <utility>
#include <vector>

#include <ferry/key_ring.hpp>
#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Config;
using ferry::sdk::Context;
using ferry::sdk::HttpResponse;
using ferry::sdk::Json;
using ferry::sdk::Sink;
using ferry::sdk::SseEvent;
using ferry::sdk::Status;
using ferry::sdk::Upstream;

// OpenAI error types by status, for upstreams whose error body says nothing.
std::string_view default_error_type(int status) {
  if (status == 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

// The HTTP status a stream error event stands for, from its error type or
// code: the status is what classes the failure (retry, failover, return), so
// a rate limit announced mid-stream stays a rate limit, not a 502.
int stream_error_status(std::string_view type, std::string_view code) {
  for (std::string_view s : {type, code}) {
    if (s == "rate_limit_error" || s == "rate_limit_exceeded" || s == "insufficient_quota" || s == "tokens" ||
        s == "requests")
      return 429;
    if (s == "timeout" || s == "timeout_error") return 504;
    if (s == "context_length_exceeded") return 400;
    if (s == "overloaded" || s == "overloaded_error" || s == "service_unavailable") return 503;
  }
  return 502;
}

class StreamParser final : public ferry::sdk::StreamParser {
 public:
  Status on_event(Context&, const SseEvent& ev, Sink& sink) override {
    if (ev.data == "[DONE]") return sink.done();
    // Only an event that mentions "error" is worth a look at its tree.
    if (ev.data.find("\"error\"") != std::string_view::npos && ev.json.type("/error") == FERRY_JSON_OBJECT) {
      auto message = ev.json.string("/error/message").value_or("upstream sent an error event");
      auto type = ev.json.string("/error/type").value_or("server_error");
      auto code = ev.json.string("/error/code").value_or("");
      // A context-length refusal keeps its code as the type: that is what classes it.
      return sink.error(stream_error_status(type, code), code == "context_length_exceeded" ? code : type,
                        "stream error from upstream: " + std::string(message));
    }
    return sink.chunk(ev.data);
  }
};

class OpenAI final : public ferry::sdk::Provider {
 public:
  explicit OpenAI(Config& c) {
    c.reject_unknown_keys({"base_url", "api_key_env", "api_key_envs", "model", "headers"});
    std::string base = c.string("/base_url", "https://api.openai.com/v1");
    if (!base.starts_with("http://") && !base.starts_with("https://"))
      c.error("/base_url", "must start with http:// or https://");
    while (!base.empty() && base.back() == '/') base.pop_back();
    url_ = base + "/chat/completions";
    embeddings_url_ = base + "/embeddings";
    models_url_ = base + "/models";
    keys_ = ferry::sdk::KeyRing::from_config(c, "", "Bearer ");
    model_ = c.string("/model");
    // keys() of anything but a table is empty: say so rather than drop them.
    if (auto t = c.json().type("/headers"); t != FERRY_JSON_MISSING && t != FERRY_JSON_OBJECT)
      c.error("/headers", "expected a table of header names to string values");
    for (const auto& name : c.keys("/headers")) headers_.emplace_back(name, c.string("/headers/" + name));
  }

  Status build_request(Context& ctx, const Json& req, Upstream& up) override {
    up.method("POST")
        .url(ctx.embeddings() ? embeddings_url_ : url_)
        .header("content-type", "application/json");
    if (!keys_.empty()) up.secret_header("authorization", keys_.pick(ctx));
    for (const auto& [name, value] : headers_) up.header(name, value);
    up.streaming(ctx.streaming());
    if (model_.empty()) {
      up.body(req);  // the fast path: the host serializes its own tree once
      return Status::kContinue;
    }
    auto copy = ctx.copy(req);
    if (!copy) return Status::kInternal;
    copy->set_string("/model", model_);
    up.body(*copy);
    return Status::kContinue;
  }

  Status build_probe(Upstream& up) override {
    up.method("GET").url(models_url_);
    if (!keys_.empty()) up.secret_header("authorization", keys_.any());
    for (const auto& [name, value] : headers_) up.header(name, value);
    return Status::kContinue;
  }

  Status parse_response(Context& ctx, const HttpResponse& r, Sink& sink) override {
    keys_.answered(ctx, r);
    if (r.status >= 200 && r.status < 300) {
      if (r.json.type() != FERRY_JSON_OBJECT)
        return sink.error(502, "upstream_error",
                          "upstream answered HTTP " + std::to_string(r.status) +
                              " with a body that is not a JSON object: " + ferry::sdk::excerpt(r.body));
      if (ctx.embeddings()) {
        if (r.json.type("/data") != FERRY_JSON_ARRAY)
          return sink.error(502, "upstream_error",
                            "upstream embeddings have no data: " + ferry::sdk::excerpt(r.body));
        return sink.response(r.body);
      }
      if (r.json.type("/choices") != FERRY_JSON_ARRAY)
        return sink.error(502, "upstream_error",
                          "upstream answer has no choices: " + ferry::sdk::excerpt(r.body));
      return sink.response(r.body);
    }
    std::string message(r.json.string("/error/message").value_or(ferry::sdk::excerpt(r.body)));
    std::string type(r.json.string("/error/type").value_or(default_error_type(r.status)));
    return sink.error(r.status, type, "upstream HTTP " + std::to_string(r.status) + ": " + message);
  }

  std::unique_ptr<ferry::sdk::StreamParser> open_stream(Context&) override {
    return std::make_unique<StreamParser>();
  }

 private:
  std::string url_;
  std::string embeddings_url_;
  std::string models_url_;  // GET: the health probe
  ferry::sdk::KeyRing keys_;
  std::string model_;
  std::vector<std::pair<std::string, std::string>> headers_;
};

}  // namespace

FERRY_PROVIDER_PLUGIN(OpenAI, "openai", "1.0.0")
