// anthropic: the Anthropic Messages API behind the canonical (OpenAI) format.
// Requests are translated field by field; answers and stream events are
// translated back into chat.completion objects and chunks.
#include <map>
#include <string>
#include <vector>

#include <ferry/key_ring.hpp>
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

std::string at(std::string_view base, size_t i) { return std::string(base) + "/" + std::to_string(i); }

std::string_view finish_reason(std::string_view stop_reason) {
  if (stop_reason == "max_tokens") return "length";
  if (stop_reason == "tool_use") return "tool_calls";
  if (stop_reason == "refusal") return "content_filter";
  return "stop";  // end_turn, stop_sequence, pause_turn
}

// Anthropic error types -> the HTTP status that decides failover and the
// OpenAI error type the client sees.
struct MappedError {
  int status;
  const char* type;
};
MappedError map_error(std::string_view type, int http_status) {
  if (type == "overloaded_error") return {503, "server_error"};
  if (type == "rate_limit_error") return {429, "rate_limit_error"};
  if (type == "api_error") return {502, "server_error"};
  if (type == "invalid_request_error") return {400, "invalid_request_error"};
  if (type == "request_too_large") return {413, "invalid_request_error"};
  if (type == "not_found_error") return {404, "invalid_request_error"};
  if (type == "authentication_error" || type == "permission_error")
    return {http_status, "authentication_error"};
  if (http_status == 529) return {503, "server_error"};
  return {http_status >= 400 ? http_status : 502,
          http_status >= 500 ? "server_error" : "invalid_request_error"};
}

struct Settings {
  std::string url;
  std::string models_url;
  std::string version;
  std::string model;
  int64_t default_max_tokens = 4096;
};

// ---------------------------------------------------------------- requests

// Writes one OpenAI content part as an Anthropic content block.
void write_part(JsonWriter& w, const Json& req, const std::string& part) {
  auto type = req.string(part + "/type").value_or("");
  if (type == "text") {
    w.begin_object()
        .key("type")
        .value("text")
        .key("text")
        .value(req.string(part + "/text").value_or(""))
        .end_object();
  } else if (type == "image_url") {
    auto url = req.string(part + "/image_url/url").value_or(req.string(part + "/image_url").value_or(""));
    w.begin_object().key("type").value("image").key("source").begin_object();
    // data:<media type>;base64,<data>
    if (url.starts_with("data:") && url.find(";base64,") != std::string_view::npos) {
      auto semi = url.find(';');
      auto comma = url.find(',');
      w.key("type").value("base64").key("media_type").value(url.substr(5, semi - 5));
      w.key("data").value(url.substr(comma + 1));
    } else {
      w.key("type").value("url").key("url").value(url);
    }
    w.end_object().end_object();
  }
}

// The text of a content value that may be a string or an array of parts.
std::string content_text(const Json& req, const std::string& content) {
  if (auto s = req.string(content)) return std::string(*s);
  std::string out;
  for (size_t i = 0, n = req.size(content); i < n; ++i)
    if (auto t = req.string(at(content, i) + "/text")) out.append(*t);
  return out;
}

// Anthropic wants alternating user/assistant turns; OpenAI allows runs of the
// same role and puts tool results in their own "tool" messages. Blocks are
// buffered per turn and a turn is written when the role changes.
class TurnWriter {
 public:
  explicit TurnWriter(JsonWriter& w) : w_(w) {}
  void block(std::string_view role, std::string json) {
    if (role != role_) flush();
    role_ = role;
    blocks_.push_back(std::move(json));
  }
  void flush() {
    if (blocks_.empty()) return;
    w_.begin_object().key("role").value(role_).key("content").begin_array();
    for (const auto& b : blocks_) w_.raw(b);
    w_.end_array().end_object();
    blocks_.clear();
  }

 private:
  JsonWriter& w_;
  std::string role_;
  std::vector<std::string> blocks_;
};

std::string build_body(Context& ctx, const Json& req, const Settings& s) {
  JsonWriter w;
  w.begin_object();
  w.key("model").value(s.model.empty() ? req.string("/model").value_or("") : std::string_view(s.model));
  int64_t max_tokens = req.integer("/max_completion_tokens").value_or(req.integer("/max_tokens").value_or(0));
  w.key("max_tokens").value(max_tokens > 0 ? max_tokens : s.default_max_tokens);

  std::string system;
  const size_t n = req.size("/messages");
  for (size_t i = 0; i < n; ++i) {
    std::string m = at("/messages", i);
    auto role = req.string(m + "/role").value_or("");
    if (role == "system" || role == "developer") {
      if (!system.empty()) system += "\n\n";
      system += content_text(req, m + "/content");
    }
  }
  if (!system.empty()) w.key("system").value(system);

  w.key("messages").begin_array();
  TurnWriter turns(w);
  for (size_t i = 0; i < n; ++i) {
    std::string m = at("/messages", i);
    auto role = req.string(m + "/role").value_or("");
    if (role == "system" || role == "developer") continue;
    if (role == "tool") {
      JsonWriter b;
      b.begin_object().key("type").value("tool_result");
      b.key("tool_use_id").value(req.string(m + "/tool_call_id").value_or(""));
      b.key("content").value(content_text(req, m + "/content")).end_object();
      turns.block("user", b.take());
      continue;
    }
    std::string_view turn = role == "assistant" ? "assistant" : "user";
    if (req.type(m + "/content") == FERRY_JSON_STRING) {
      auto text = req.string(m + "/content").value_or("");
      if (!text.empty()) {
        JsonWriter b;
        b.begin_object().key("type").value("text").key("text").value(text).end_object();
        turns.block(turn, b.take());
      }
    } else {
      for (size_t k = 0, parts = req.size(m + "/content"); k < parts; ++k) {
        JsonWriter b;
        write_part(b, req, at(m + "/content", k));
        if (!b.str().empty()) turns.block(turn, b.take());
      }
    }
    for (size_t k = 0, calls = req.size(m + "/tool_calls"); k < calls; ++k) {
      std::string call = at(m + "/tool_calls", k);
      auto args = req.string(call + "/function/arguments").value_or("{}");
      // Arguments arrive as a JSON string; Anthropic wants the object itself.
      auto parsed = ctx.parse(args.empty() ? "{}" : args);
      JsonWriter b;
      b.begin_object().key("type").value("tool_use");
      b.key("id").value(req.string(call + "/id").value_or(""));
      b.key("name").value(req.string(call + "/function/name").value_or(""));
      b.key("input").raw(parsed && parsed->type() == FERRY_JSON_OBJECT ? parsed->dump() : "{}");
      b.end_object();
      turns.block("assistant", b.take());
    }
  }
  turns.flush();
  w.end_array();

  if (auto t = req.raw("/temperature")) w.key("temperature").raw(*t);
  if (auto t = req.raw("/top_p")) w.key("top_p").raw(*t);
  // Not OpenAI's, but an Anthropic client's (through the anthropic frontend).
  if (req.type("/top_k") == FERRY_JSON_NUMBER) w.key("top_k").raw(*req.raw("/top_k"));
  if (req.type("/stop") == FERRY_JSON_STRING) {
    w.key("stop_sequences").begin_array().value(*req.string("/stop")).end_array();
  } else if (req.type("/stop") == FERRY_JSON_ARRAY) {
    w.key("stop_sequences").raw(*req.raw("/stop"));
  }
  if (req.boolean("/stream").value_or(false)) w.key("stream").value(true);
  if (auto user = req.string("/user"))
    w.key("metadata").begin_object().key("user_id").value(*user).end_object();

  if (size_t tools = req.size("/tools")) {
    w.key("tools").begin_array();
    for (size_t i = 0; i < tools; ++i) {
      std::string f = at("/tools", i) + "/function";
      w.begin_object().key("name").value(req.string(f + "/name").value_or(""));
      if (auto d = req.string(f + "/description")) w.key("description").value(*d);
      w.key("input_schema").raw(req.raw(f + "/parameters").value_or(R"({"type":"object","properties":{}})"));
      w.end_object();
    }
    w.end_array();
    auto choice = req.string("/tool_choice");
    if (choice == std::optional<std::string_view>("required")) {
      w.key("tool_choice").begin_object().key("type").value("any").end_object();
    } else if (choice == std::optional<std::string_view>("none")) {
      w.key("tool_choice").begin_object().key("type").value("none").end_object();
    } else if (auto name = req.string("/tool_choice/function/name")) {
      w.key("tool_choice").begin_object().key("type").value("tool").key("name").value(*name).end_object();
    }
  }
  w.end_object();
  return w.take();
}

// ---------------------------------------------------------------- answers

void write_usage(JsonWriter& w, int64_t input, int64_t output) {
  w.key("usage").begin_object();
  w.key("prompt_tokens").value(input).key("completion_tokens").value(output);
  w.key("total_tokens").value(input + output);
  w.end_object();
}

// Cache reads and writes are input tokens too.
int64_t input_tokens(const Json& j, const std::string& usage) {
  return j.integer(usage + "/input_tokens").value_or(0) +
         j.integer(usage + "/cache_creation_input_tokens").value_or(0) +
         j.integer(usage + "/cache_read_input_tokens").value_or(0);
}

std::string completion_from(const Json& r, int64_t created) {
  std::string text;
  JsonWriter calls;
  calls.begin_array();
  bool has_calls = false;
  for (size_t i = 0, n = r.size("/content"); i < n; ++i) {
    std::string b = at("/content", i);
    auto type = r.string(b + "/type").value_or("");
    if (type == "text") {
      text.append(r.string(b + "/text").value_or(""));
    } else if (type == "tool_use") {
      has_calls = true;
      calls.begin_object().key("id").value(r.string(b + "/id").value_or(""));
      calls.key("type").value("function").key("function").begin_object();
      calls.key("name").value(r.string(b + "/name").value_or(""));
      calls.key("arguments").value(r.raw(b + "/input").value_or("{}"));
      calls.end_object().end_object();
    }
  }
  calls.end_array();

  JsonWriter w;
  w.begin_object();
  w.key("id").value(r.string("/id").value_or("msg")).key("object").value("chat.completion");
  w.key("created").value(created).key("model").value(r.string("/model").value_or(""));
  w.key("choices").begin_array().begin_object().key("index").value(0);
  w.key("message").begin_object().key("role").value("assistant").key("content");
  if (text.empty() && has_calls)
    w.null();
  else
    w.value(text);
  if (has_calls) w.key("tool_calls").raw(calls.str());
  w.end_object();
  w.key("finish_reason").value(finish_reason(r.string("/stop_reason").value_or("end_turn")));
  w.end_object().end_array();
  write_usage(w, input_tokens(r, "/usage"), r.integer("/usage/output_tokens").value_or(0));
  w.end_object();
  return w.take();
}

class Stream final : public ferry::sdk::StreamParser {
 public:
  explicit Stream(int64_t created) : created_(created) {}

  Status on_event(Context&, const SseEvent& ev, Sink& sink) override {
    const Json& j = ev.json;
    // Every Anthropic event carries JSON. Checked first: a known event with a
    // broken payload (a delta cut short) must not be skipped as if empty.
    if (!j.valid())
      return sink.error(502, "upstream_error",
                        "Anthropic sent an event that is not JSON: " + ferry::sdk::excerpt(ev.data));
    // The event name and the payload's "type" agree; the payload is authoritative.
    std::string type(j.string("/type").value_or(ev.event));
    if (type == "ping" || type == "content_block_stop") return Status::kContinue;
    if (type == "message_start") {
      id_ = j.string("/message/id").value_or("msg");
      model_ = j.string("/message/model").value_or("");
      input_tokens_ = input_tokens(j, "/message/usage");
      output_tokens_ = j.integer("/message/usage/output_tokens").value_or(0);
      return sink.chunk(
          chunk([](JsonWriter& d) { d.key("role").value("assistant").key("content").value(""); }));
    }
    if (type == "content_block_start") {
      if (j.string("/content_block/type") != std::optional<std::string_view>("tool_use"))
        return Status::kContinue;
      int64_t block = j.integer("/index").value_or(0);
      int64_t tool = static_cast<int64_t>(tool_index_.size());
      tool_index_[block] = tool;
      auto id = j.string("/content_block/id").value_or("");
      auto name = j.string("/content_block/name").value_or("");
      return sink.chunk(chunk([&](JsonWriter& d) {
        d.key("tool_calls").begin_array().begin_object().key("index").value(tool).key("id").value(id);
        d.key("type").value("function").key("function").begin_object().key("name").value(name);
        d.key("arguments").value("").end_object().end_object().end_array();
      }));
    }
    if (type == "content_block_delta") {
      auto delta_type = j.string("/delta/type").value_or("");
      if (delta_type == "text_delta") {
        auto text = j.string("/delta/text").value_or("");
        return sink.chunk(chunk([&](JsonWriter& d) { d.key("content").value(text); }));
      }
      if (delta_type == "input_json_delta") {
        auto it = tool_index_.find(j.integer("/index").value_or(0));
        if (it == tool_index_.end()) return Status::kContinue;
        auto partial = j.string("/delta/partial_json").value_or("");
        return sink.chunk(chunk([&](JsonWriter& d) {
          d.key("tool_calls").begin_array().begin_object().key("index").value(it->second);
          d.key("function")
              .begin_object()
              .key("arguments")
              .value(partial)
              .end_object()
              .end_object()
              .end_array();
        }));
      }
      return Status::kContinue;  // thinking and signature deltas have no OpenAI counterpart
    }
    if (type == "message_delta") {
      if (auto out = j.integer("/usage/output_tokens")) output_tokens_ = *out;
      if (auto stop = j.string("/delta/stop_reason"))
        return sink.chunk(chunk([](JsonWriter&) {}, finish_reason(*stop)));
      return Status::kContinue;
    }
    if (type == "message_stop") {
      JsonWriter w;
      head(w);
      w.key("choices").begin_array().end_array();
      write_usage(w, input_tokens_, output_tokens_);
      w.end_object();
      sink.chunk(w.str());
      return sink.done();
    }
    if (type == "error") {
      auto err_type = j.string("/error/type").value_or("api_error");
      auto mapped = map_error(err_type, 502);
      return sink.error(mapped.status, mapped.type,
                        "stream error from Anthropic (" + std::string(err_type) +
                            "): " + std::string(j.string("/error/message").value_or("")));
    }
    return Status::kContinue;  // unknown event types are skipped, as Anthropic asks of clients
  }

 private:
  void head(JsonWriter& w) const {
    w.begin_object();
    w.key("id").value(id_).key("object").value("chat.completion.chunk").key("created").value(created_);
    w.key("model").value(model_);
  }
  template <class F>
  std::string chunk(F&& delta, std::string_view finish = {}) const {
    JsonWriter w;
    head(w);
    w.key("choices").begin_array().begin_object().key("index").value(0).key("delta").begin_object();
    delta(w);
    w.end_object().key("finish_reason");
    if (finish.empty())
      w.null();
    else
      w.value(finish);
    w.end_object().end_array().end_object();
    return w.take();
  }

  int64_t created_;
  std::string id_ = "msg";
  std::string model_;
  int64_t input_tokens_ = 0;
  int64_t output_tokens_ = 0;
  std::map<int64_t, int64_t> tool_index_;  // Anthropic block index -> OpenAI tool_calls index
};

int64_t now_s() {
  return static_cast<int64_t>(ferry::sdk::host().clock_ns(FERRY_CLOCK_REALTIME) / 1'000'000'000);
}

class Anthropic final : public ferry::sdk::Provider {
 public:
  explicit Anthropic(Config& c) {
    c.reject_unknown_keys(
        {"base_url", "api_key_env", "api_key_envs", "version", "model", "max_tokens_default"});
    std::string base = c.string("/base_url", "https://api.anthropic.com");
    if (!base.starts_with("http://") && !base.starts_with("https://"))
      c.error("/base_url", "must start with http:// or https://");
    while (!base.empty() && base.back() == '/') base.pop_back();
    s_.url = base + "/v1/messages";
    s_.models_url = base + "/v1/models";
    keys_ = ferry::sdk::KeyRing::from_config(c, "ANTHROPIC_API_KEY");
    s_.version = c.string("/version", "2023-06-01");
    s_.model = c.string("/model");
    s_.default_max_tokens = c.integer("/max_tokens_default", 4096, 1, 1'000'000);
  }

  Status build_request(Context& ctx, const Json& req, Upstream& up) override {
    if (ctx.embeddings()) return Status::kUnsupported;  // the Messages API has no embeddings
    up.method("POST").url(s_.url).header("content-type", "application/json");
    up.header("anthropic-version", s_.version);
    if (!keys_.empty()) up.secret_header("x-api-key", keys_.pick(ctx));
    up.streaming(ctx.streaming());
    // An Anthropic client's own body goes on as it came, but for the model
    // (sdk/ABI.md R21): thinking blocks and their signatures, cache_control,
    // citations and fields Ferry does not know yet all survive.
    if (ctx.dialect() == "anthropic")
      if (auto native = ctx.native_body())
        if (auto body = ctx.parse(*native); body && body->type() == FERRY_JSON_OBJECT) {
          auto model = s_.model.empty() ? req.string("/model").value_or("") : std::string_view(s_.model);
          body->set_string("/model", model);
          if (auto beta = ctx.header("anthropic-beta")) up.header("anthropic-beta", *beta);
          up.body(*body).dialect("anthropic");
          return Status::kContinue;
        }
    up.body(build_body(ctx, req, s_));
    return Status::kContinue;
  }

  Status build_probe(Upstream& up) override {
    up.method("GET").url(s_.models_url).header("anthropic-version", s_.version);
    if (!keys_.empty()) up.secret_header("x-api-key", keys_.any());
    return Status::kContinue;
  }

  Status parse_response(Context& ctx, const HttpResponse& r, Sink& sink) override {
    keys_.answered(ctx, r);
    if (r.status >= 200 && r.status < 300) {
      if (r.json.type() != FERRY_JSON_OBJECT || r.json.type("/content") != FERRY_JSON_ARRAY)
        return sink.error(502, "upstream_error",
                          "Anthropic answered HTTP " + std::to_string(r.status) +
                              " with something that is not a message: " + ferry::sdk::excerpt(r.body));
      return sink.response(completion_from(r.json, now_s()));
    }
    std::string err_type(r.json.string("/error/type").value_or(""));
    auto mapped = map_error(err_type, r.status);
    std::string message(r.json.string("/error/message").value_or(ferry::sdk::excerpt(r.body)));
    return sink.error(mapped.status, mapped.type,
                      "Anthropic HTTP " + std::to_string(r.status) + ": " + message);
  }

  std::unique_ptr<ferry::sdk::StreamParser> open_stream(Context&) override {
    return std::make_unique<Stream>(now_s());
  }

 private:
  Settings s_;
  ferry::sdk::KeyRing keys_;
};

}  // namespace

FERRY_PROVIDER_PLUGIN(Anthropic, "anthropic", "1.0.0")
