#include "encode.h"

#include <ctime>

namespace ferry_anthropic {
namespace {

using ferry::sdk::Context;
using ferry::sdk::ErrorInfo;
using ferry::sdk::Json;
using ferry::sdk::JsonWriter;
using ferry::sdk::Output;
using ferry::sdk::Status;

std::string at(std::string_view base, size_t i) { return std::string(base) + "/" + std::to_string(i); }

// Anthropic ids start with msg_; an upstream's chatcmpl-... keeps its tail.
std::string message_id(std::string_view id) {
  if (id.starts_with("msg_")) return std::string(id);
  if (auto dash = id.find('-'); dash != std::string_view::npos) id.remove_prefix(dash + 1);
  return "msg_" + std::string(id.empty() ? "ferry" : id);
}

// Prompt tokens an OpenAI usage object reports as read from a cache are
// Anthropic's cache_read_input_tokens, counted apart from input_tokens.
struct Usage {
  int64_t input = 0;
  int64_t output = 0;
  int64_t cache_read = 0;
};
Usage usage_of(const Json& j, std::string_view usage) {
  std::string u(usage);
  Usage out;
  out.cache_read = j.integer(u + "/prompt_tokens_details/cached_tokens").value_or(0);
  out.input = std::max<int64_t>(0, j.integer(u + "/prompt_tokens").value_or(0) - out.cache_read);
  out.output = j.integer(u + "/completion_tokens").value_or(0);
  return out;
}
void write_usage(JsonWriter& w, const Usage& u) {
  w.key("usage").begin_object();
  w.key("input_tokens").value(u.input).key("output_tokens").value(u.output);
  w.key("cache_creation_input_tokens").value(int64_t{0}).key("cache_read_input_tokens").value(u.cache_read);
  w.end_object();
}

std::string rfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string_view stop_reason(std::string_view finish_reason) {
  if (finish_reason == "length") return "max_tokens";
  if (finish_reason == "tool_calls" || finish_reason == "function_call") return "tool_use";
  if (finish_reason == "content_filter") return "refusal";
  return "end_turn";
}

std::string_view error_type(int status) {
  switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    case 504: return "timeout_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

std::string error_body(int status, std::string_view message, std::string_view request_id) {
  JsonWriter w;
  w.begin_object().key("type").value("error").key("error").begin_object();
  w.key("type").value(error_type(status)).key("message").value(message).end_object();
  if (!request_id.empty()) w.key("request_id").value(request_id);
  w.end_object();
  return w.take();
}

std::string message_from(const Json& r, std::string_view fallback_model) {
  JsonWriter w;
  w.begin_object();
  w.key("id").value(message_id(r.string("/id").value_or("")));
  w.key("type").value("message").key("role").value("assistant");
  w.key("model").value(r.string("/model").value_or(fallback_model));
  w.key("content").begin_array();
  const std::string m = "/choices/0/message";
  if (auto thinking = r.string(m + "/reasoning_content"); thinking && !thinking->empty())
    w.begin_object()
        .key("type")
        .value("thinking")
        .key("thinking")
        .value(*thinking)
        .key("signature")
        .value("")
        .end_object();
  if (auto text = r.string(m + "/content"); text && !text->empty())
    w.begin_object().key("type").value("text").key("text").value(*text).end_object();
  for (size_t i = 0, n = r.size(m + "/tool_calls"); i < n; ++i) {
    std::string call = at(m + "/tool_calls", i);
    w.begin_object().key("type").value("tool_use").key("id").value(r.string(call + "/id").value_or(""));
    w.key("name").value(r.string(call + "/function/name").value_or(""));
    // OpenAI arguments are a JSON string; Anthropic's input is the object.
    auto args = r.string(call + "/function/arguments").value_or("{}");
    auto parsed = ferry::sdk::OwnedJson::parse(args.empty() ? "{}" : args);
    w.key("input").raw(parsed && parsed->json().type() == FERRY_JSON_OBJECT ? parsed->json().dump() : "{}");
    w.end_object();
  }
  w.end_array();
  w.key("stop_reason").value(stop_reason(r.string("/choices/0/finish_reason").value_or("stop")));
  w.key("stop_sequence").null();
  write_usage(w, usage_of(r, "/usage"));
  w.end_object();
  return w.take();
}

std::string models_from(const Json& list) {
  JsonWriter w;
  w.begin_object().key("data").begin_array();
  size_t n = list.size("/data");
  for (size_t i = 0; i < n; ++i) {
    std::string m = at("/data", i);
    auto id = list.string(m + "/id").value_or("");
    w.begin_object().key("type").value("model").key("id").value(id).key("display_name").value(id);
    w.key("created_at").value(rfc3339(list.integer(m + "/created").value_or(0))).end_object();
  }
  w.end_array().key("has_more").value(false);
  w.key("first_id");
  if (n)
    w.value(list.string("/data/0/id").value_or(""));
  else
    w.null();
  w.key("last_id");
  if (n)
    w.value(list.string(at("/data", n - 1) + "/id").value_or(""));
  else
    w.null();
  w.end_object();
  return w.take();
}

// ---------------------------------------------------------------- streams

Status StreamEncoder::response(Context& ctx, const Json& response, Output& out) {
  out.header("request-id", ctx.request_id());
  if (ctx.operation() == "models") return out.json(200, models_from(response));
  return out.json(200, message_from(response, ctx.model()));
}

Status StreamEncoder::error(Context& ctx, const ErrorInfo& e, Output& out) {
  std::string body = error_body(e.status, e.message, ctx.request_id());
  if (e.in_stream) {
    failed_ = true;
    return out.event("error", body);
  }
  out.header("request-id", ctx.request_id());
  if (!e.retry_after.empty()) out.header("retry-after", e.retry_after);
  return out.json(e.status, body);
}

void StreamEncoder::start(std::string_view id, std::string_view model, Output& out) {
  started_ = true;
  JsonWriter w;
  w.begin_object().key("type").value("message_start").key("message").begin_object();
  w.key("id").value(message_id(id));
  w.key("type").value("message").key("role").value("assistant");
  w.key("model").value(model);
  w.key("content").begin_array().end_array();
  w.key("stop_reason").null().key("stop_sequence").null();
  // The canonical stream reports usage at its end: message_delta carries it.
  write_usage(w, Usage{});
  w.end_object().end_object();
  out.event("message_start", w.str());
  out.event("ping", R"({"type":"ping"})");
}

void StreamEncoder::open(Block kind, std::string_view block_json, Output& out) {
  close(out);
  open_ = kind;
  index_ = next_index_++;
  JsonWriter w;
  w.begin_object().key("type").value("content_block_start").key("index").value(index_);
  w.key("content_block").raw(block_json).end_object();
  out.event("content_block_start", w.str());
}

void StreamEncoder::close(Output& out) {
  if (open_ == Block::kNone) return;
  JsonWriter w;
  w.begin_object().key("type").value("content_block_stop").key("index").value(index_).end_object();
  out.event("content_block_stop", w.str());
  open_ = Block::kNone;
}

void StreamEncoder::delta(int64_t index, std::string_view delta_json, Output& out) {
  JsonWriter w;
  w.begin_object().key("type").value("content_block_delta").key("index").value(index);
  w.key("delta").raw(delta_json).end_object();
  out.event("content_block_delta", w.str());
}

Status StreamEncoder::native(Context& ctx, std::string_view event, std::string_view data, Output& out) {
  if (event.empty() && !ctx.streaming()) {
    out.header("request-id", ctx.request_id());
    return out.json(200, data);
  }
  native_ = true;
  std::string name(event);
  std::optional<ferry::sdk::OwnedJson> parsed;
  // The event name and the payload's type agree; a missing name is the type's.
  if (name.empty() || name == "content_block_start") {
    parsed = ferry::sdk::OwnedJson::parse(data);
    if (parsed && name.empty()) name = parsed->json().string("/type").value_or("");
  }
  if (name == "message_start") {
    started_ = true;
  } else if (name == "content_block_start") {
    open_ = Block::kText;  // its kind does not matter here, only that one is open
    index_ = parsed ? parsed->json().integer("/index").value_or(next_index_) : next_index_;
    next_index_ = index_ + 1;
  } else if (name == "content_block_stop") {
    open_ = Block::kNone;
  } else if (name == "message_stop") {
    finished_ = true;
  }
  return out.event(name, data);
}

Status StreamEncoder::chunk(Context& ctx, const Json& c, Output& out) {
  if (native_) {
    // What the client already got as the upstream sent it; kept for an end
    // the host may have to write itself.
    if (c.type("/usage") == FERRY_JSON_OBJECT) {
      Usage u = usage_of(c, "/usage");
      input_tokens_ = u.input;
      output_tokens_ = u.output;
      cache_read_tokens_ = u.cache_read;
    }
    if (auto finish = c.string("/choices/0/finish_reason")) stop_reason_ = stop_reason(*finish);
    return ferry::sdk::kOk;
  }
  if (!started_) start(c.string("/id").value_or(""), c.string("/model").value_or(ctx.model()), out);
  if (c.type("/usage") == FERRY_JSON_OBJECT) {
    Usage u = usage_of(c, "/usage");
    input_tokens_ = u.input;
    output_tokens_ = u.output;
    cache_read_tokens_ = u.cache_read;
  }
  // Anthropic has one answer per request: the first choice is it.
  const std::string d = "/choices/0/delta";
  if (auto thinking = c.string(d + "/reasoning_content"); thinking && !thinking->empty()) {
    if (open_ != Block::kThinking)
      open(Block::kThinking, R"({"type":"thinking","thinking":"","signature":""})", out);
    delta(index_,
          JsonWriter()
              .begin_object()
              .key("type")
              .value("thinking_delta")
              .key("thinking")
              .value(*thinking)
              .end_object()
              .str(),
          out);
  }
  if (auto text = c.string(d + "/content"); text && !text->empty()) {
    if (open_ != Block::kText) open(Block::kText, R"({"type":"text","text":""})", out);
    delta(index_,
          JsonWriter()
              .begin_object()
              .key("type")
              .value("text_delta")
              .key("text")
              .value(*text)
              .end_object()
              .str(),
          out);
  }
  for (size_t i = 0, n = c.size(d + "/tool_calls"); i < n; ++i) {
    std::string call = at(d + "/tool_calls", i);
    int64_t k = c.integer(call + "/index").value_or(static_cast<int64_t>(i));
    auto known = tools_.find(k);
    if (known == tools_.end()) {
      JsonWriter b;
      b.begin_object().key("type").value("tool_use").key("id").value(c.string(call + "/id").value_or(""));
      b.key("name")
          .value(c.string(call + "/function/name").value_or(""))
          .key("input")
          .begin_object()
          .end_object();
      b.end_object();
      open(Block::kToolUse, b.str(), out);
      known = tools_.emplace(k, index_).first;
    }
    if (auto args = c.string(call + "/function/arguments"); args && !args->empty())
      delta(known->second,
            JsonWriter()
                .begin_object()
                .key("type")
                .value("input_json_delta")
                .key("partial_json")
                .value(*args)
                .end_object()
                .str(),
            out);
  }
  if (auto finish = c.string("/choices/0/finish_reason")) stop_reason_ = stop_reason(*finish);
  return ferry::sdk::kOk;
}

Status StreamEncoder::end(Context& ctx, Output& out) {
  if (failed_ || finished_) return ferry::sdk::kOk;
  if (!started_) start({}, ctx.model(), out);
  close(out);
  JsonWriter w;
  w.begin_object().key("type").value("message_delta");
  w.key("delta")
      .begin_object()
      .key("stop_reason")
      .value(stop_reason_)
      .key("stop_sequence")
      .null()
      .end_object();
  write_usage(w, Usage{input_tokens_, output_tokens_, cache_read_tokens_});
  w.end_object();
  out.event("message_delta", w.str());
  out.event("message_stop", R"({"type":"message_stop"})");
  return ferry::sdk::kOk;
}

}  // namespace ferry_anthropic
