// ndjson-probe: a provider that exists to test what ABI 1.3 gives adapters,
// against the mock upstream's Ollama-style POST /api/chat: streams framed as
// newline-delimited JSON, a stream that may just end (on_end), a request the
// provider refuses as the client's error (upstream_refuse), and errors with
// their own class, code and retry-after (sink_fail).
#include <string>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Config;
using ferry::sdk::Context;
using ferry::sdk::HttpResponse;
using ferry::sdk::Json;
using ferry::sdk::JsonWriter;
using ferry::sdk::Sink;
using ferry::sdk::SseEvent;
using ferry::sdk::Status;
using ferry::sdk::Upstream;

std::string chunk(std::string_view content, const char* finish) {
  JsonWriter w;
  w.begin_object().key("id").value("probe").key("object").value("chat.completion.chunk");
  w.key("model").value("probe").key("choices").begin_array().begin_object().key("index").value(0);
  w.key("delta").begin_object();
  if (!content.empty()) w.key("content").value(content);
  w.end_object().key("finish_reason");
  if (finish)
    w.value(finish);
  else
    w.null();
  w.end_object().end_array().end_object();
  return w.take();
}

class Lines final : public ferry::sdk::StreamParser {
 public:
  Status on_event(Context&, const SseEvent& ev, Sink& sink) override {
    const Json& j = ev.json;
    if (!j.valid()) return sink.error(502, "upstream_error", "a line that is not JSON");
    seen_ = true;
    if (auto piece = j.string("/message/content"); piece && !piece->empty()) {
      if (auto s = sink.chunk(chunk(*piece, nullptr)); s != ferry::sdk::kOk) return s;
    }
    if (!j.boolean("/done").value_or(false)) return ferry::sdk::kOk;
    sink.chunk(
        chunk({}, j.string("/done_reason") == std::optional<std::string_view>("length") ? "length" : "stop"));
    JsonWriter u;
    u.begin_object()
        .key("id")
        .value("probe")
        .key("object")
        .value("chat.completion.chunk")
        .key("model")
        .value("probe");
    u.key("choices").begin_array().end_array().key("usage").begin_object();
    u.key("prompt_tokens").value(j.integer("/prompt_eval_count").value_or(0));
    u.key("completion_tokens").value(j.integer("/eval_count").value_or(0)).end_object().end_object();
    sink.chunk(u.str());
    return sink.done();
  }
  // This dialect may end its stream at EOF, without a done line: finished,
  // as long as something came.
  Status on_end(Context&, Sink& sink) override {
    if (!seen_) return ferry::sdk::kOk;  // nothing at all: cut short
    sink.chunk(chunk({}, "stop"));
    return sink.done();
  }

 private:
  bool seen_ = false;
};

class NdjsonProbe final : public ferry::sdk::Provider {
 public:
  using stream_type = Lines;
  explicit NdjsonProbe(Config& config) : url_(config.required_string("/base_url") + "/api/chat") {
    config.reject_unknown_keys({"base_url"});
  }

  Status build_request(Context& ctx, const Json& req, Upstream& up) override {
    if (ctx.embeddings()) return Status::kUnsupported;
    // Something this upstream cannot do is the client's request, not the provider's failure.
    if (req.integer("/n").value_or(1) > 1)
      return up.refuse(400, "invalid_request_error", "ndjson-probe answers one choice only (n = 1)",
                       FERRY_ERROR_CLASS_CLIENT, "n_unsupported");
    JsonWriter w;
    w.begin_object().key("model").value(req.string("/model").value_or(""));
    w.key("messages").raw(req.raw("/messages").value_or("[]"));
    w.key("stream").value(ctx.streaming()).end_object();
    up.method("POST").url(url_).header("content-type", "application/json").body(w.str());
    up.streaming(ctx.streaming()).framing(FERRY_FRAMING_NDJSON);
    return ferry::sdk::kOk;
  }

  Status parse_response(Context&, const HttpResponse& r, Sink& sink) override {
    if (r.status == 429)
      // Busy, not limited by the gateway's key: this pipeline retries it on the same provider.
      return sink.fail(429, FERRY_ERROR_CLASS_SERVER, "server_error", "the probe upstream is busy",
                       "probe_busy", 2000);
    if (r.status != 200)
      return sink.error(r.status, "upstream_error", std::string(r.json.string("/error").value_or("failed")));
    JsonWriter w;
    w.begin_object()
        .key("id")
        .value("probe")
        .key("object")
        .value("chat.completion")
        .key("model")
        .value("probe");
    w.key("choices").begin_array().begin_object().key("index").value(0);
    w.key("message").begin_object().key("role").value("assistant");
    w.key("content").value(r.json.string("/message/content").value_or("")).end_object();
    w.key("finish_reason").value("stop").end_object().end_array();
    w.key("usage")
        .begin_object()
        .key("prompt_tokens")
        .value(r.json.integer("/prompt_eval_count").value_or(0));
    w.key("completion_tokens").value(r.json.integer("/eval_count").value_or(0)).end_object().end_object();
    return sink.response(w.str());
  }

  std::unique_ptr<ferry::sdk::StreamParser> open_stream(Context&) override {
    return std::make_unique<Lines>();
  }

 private:
  std::string url_;
};

}  // namespace

FERRY_PROVIDER_PLUGIN(NdjsonProbe, "ndjson-probe", "1.0.0")
