#include "core/pipeline/client_stream.h"

#include "core/log/log.h"
#include "core/metrics/metrics.h"
#include "core/pipeline/request_checks.h"

namespace ferry::pipeline {

namespace asio = boost::asio;
using json::Value;

namespace {

// The member `key` of `obj` if it has the type `want` says, else `fallback`:
// a plugin's or an upstream's answer may hold anything.
Value typed_member(const Value& obj, const char* key, const Value& fallback) {
  const Value* v = member(obj, key);
  return v && v->type() == fallback.type() ? *v : fallback;
}

}  // namespace

std::vector<std::string> response_to_chunks(const Value& r, bool include_usage) {
  std::vector<std::string> out;
  const Value* created = member(r, "created");
  Value base = {{"id", typed_member(r, "id", "chatcmpl-ferry")},
                {"object", "chat.completion.chunk"},
                {"created", created && created->is_number() ? *created : Value(0)},
                {"model", typed_member(r, "model", "")}};
  const Value* choices = member(r, "choices");
  if (choices && choices->is_array()) {
    for (const auto& c : *choices) {
      if (!c.is_object()) continue;
      Value delta = typed_member(c, "message", Value::object());
      // Streamed tool calls carry their position (clients merge deltas by it).
      if (auto calls = delta.find("tool_calls"); calls != delta.end() && calls->is_array())
        for (size_t i = 0; i < calls->size(); ++i)
          if ((*calls)[i].is_object() && !(*calls)[i].contains("index")) (*calls)[i]["index"] = i;
      const Value* index = member(c, "index");
      Value chunk = base;
      chunk["choices"] = Value::array({{{"index", index && index->is_number_integer() ? *index : Value(0)},
                                        {"delta", std::move(delta)},
                                        {"finish_reason", nullptr}}});
      out.push_back(json::dump(chunk));
      chunk["choices"][0]["delta"] = Value::object();
      const Value* finish = member(c, "finish_reason");
      chunk["choices"][0]["finish_reason"] = finish && !finish->is_null() ? *finish : Value("stop");
      out.push_back(json::dump(chunk));
    }
  }
  if (const Value* usage = member(r, "usage"); include_usage && usage && usage->is_object()) {
    Value chunk = base;
    chunk["choices"] = Value::array();
    chunk["usage"] = *usage;
    out.push_back(json::dump(chunk));
  }
  return out;
}

asio::awaitable<void> ClientStream::reply_error(int status, std::string message, std::string_view type,
                                                std::string_view code, std::string_view retry_after) {
  outcome_.status = status;
  outcome_.error = message;
  if (!retry_after.empty()) ctx_.response_headers.set("retry-after", retry_after);
  ctx_.response_started = true;
  outcome_.ttfb = since_start();
  bool sent = co_await out_.send_error(status, type, code, message, ctx_.response_headers);
  if (!sent) outcome_.status = 499;
}

asio::awaitable<void> ClientStream::reply_failure(const Failure& f) {
  co_await reply_error(f.status, f.message, f.type, f.code, f.retry_after);
}

asio::awaitable<bool> ClientStream::respond() {
  outcome_.status = ctx_.respond_status;
  ctx_.response_started = true;
  outcome_.ttfb = since_start();
  bool sent = false;
  bool replayed = false;
  if (ctx_.stream && ctx_.respond_status == 200) {
    Value v;
    json::parse(ctx_.respond_body, v, json::ParseLimits::defaults());
    if (v.is_object() && v.contains("choices")) {
      // Its usage is not upstream usage, so it is not counted as such.
      out_.begin_events(ctx_.response_headers);
      for (const auto& chunk : response_to_chunks(v, include_usage_)) out_.queue_event(chunk);
      out_.queue_event("[DONE]");
      out_.end_events();
      sent = co_await out_.flush();
      replayed = true;
    }
  }
  if (!replayed)
    sent = co_await out_.send_json(ctx_.respond_status, ctx_.respond_body, ctx_.response_headers);
  if (!sent) outcome_.status = 499;
  co_return sent;
}

asio::awaitable<bool> ClientStream::send_answer(std::string_view body) {
  outcome_.status = 200;
  ctx_.response_started = true;
  outcome_.ttfb = since_start();
  return out_.send_json(200, body, ctx_.response_headers);
}

void ClientStream::send_chunk(std::string_view chunk) {
  if (!committed_ && held_.size() < hold_chunks_) {
    // Not yet: while nothing is sent, a failure can still fail over.
    held_.emplace_back(chunk);
    return;
  }
  if (!committed_) start();
  out_.queue_event(chunk);
}

void ClientStream::send_native_event(std::string_view event, std::string_view data) {
  if (!committed_) start();
  out_.queue_native(event, data);
}

asio::awaitable<bool> ClientStream::send_native_answer(std::string_view body) {
  outcome_.status = 200;
  ctx_.response_started = true;
  outcome_.ttfb = since_start();
  return out_.send_native(body, ctx_.response_headers);
}

void ClientStream::start() {
  committed_ = true;
  ctx_.response_started = true;
  outcome_.status = 200;
  outcome_.ttfb = since_start();
  out_.begin_events(ctx_.response_headers);
  for (const auto& chunk : held_) out_.queue_event(chunk);
  held_.clear();
}

asio::awaitable<bool> ClientStream::flush() {
  if (client_gone_) co_return false;
  bool sent = co_await out_.flush();
  if (!sent) client_gone_ = true;
  co_return sent;
}

asio::awaitable<void> ClientStream::finish() {
  if (!committed_) start();
  out_.queue_event("[DONE]");
  out_.end_events();
  co_await flush();
}

asio::awaitable<void> ClientStream::abort(const std::string& message) {
  outcome_.error = message;
  log::get().warn("[{}] stream from provider '{}' failed after it started: {}", ctx_.request_id,
                  ctx_.provider, message);
  metrics::Registry::global().add("ferry_stream_interruptions_total{provider=\"" + ctx_.provider + "\"}", 1);
  out_.queue_error("upstream_error", "stream_interrupted", message);
  out_.queue_event("[DONE]");
  out_.end_events();
  co_await flush();
}

asio::awaitable<void> ClientStream::abandon() {
  if (ctx_.cancel_reason().empty()) {
    client_gone_ = true;
  } else if (!committed_) {
    co_await reply_error(503, ctx_.cancel_reason(), "server_error", "shutting_down");
  } else {
    outcome_.error = ctx_.cancel_reason();
  }
}

}  // namespace ferry::pipeline
