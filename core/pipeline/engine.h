#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "core/http/upstream_client.h"
#include "core/pipeline/request_context.h"
#include "core/pipeline/runtime.h"
#include "core/util/headers.h"

namespace ferry::pipeline {

// {"error":{"message":..,"type":..,"code":..}}, the OpenAI error shape.
std::string error_json(std::string_view message, std::string_view type, std::string_view code);

// How the engine answers the client; implemented by the frontend server so the
// engine never sees sockets. Awaitable calls return false once the client is gone.
//
// A stream is queued and written at flush(): the engine flushes after each
// batch of events that arrived together, so they leave in one write, and
// nothing waits for events that have not arrived.
class ClientWriter {
 public:
  virtual ~ClientWriter() = default;
  virtual boost::asio::awaitable<bool> send_json(int status, std::string_view body,
                                                 const util::Headers& headers) = 0;
  // A 200 text/event-stream response whose body follows in events.
  virtual void begin_events(const util::Headers& headers) = 0;
  // Queues "data: <data>\n\n".
  virtual void queue_event(std::string_view data) = 0;
  // Queues the end of the response body.
  virtual void end_events() = 0;
  virtual boost::asio::awaitable<bool> flush() = 0;

  // An error the gateway raises, before anything was sent: a status and a
  // body (in the client's dialect, for a frontend)...
  virtual boost::asio::awaitable<bool> send_error(int status, std::string_view type, std::string_view code,
                                                  std::string_view message, const util::Headers& headers) {
    // A coroutine, so that the body outlives the send that reads it.
    std::string body = error_json(message, type, code);
    bool sent = co_await send_json(status, body, headers);
    co_return sent;
  }
  // ... or in a stream under way: an error event, after which the stream only ends.
  virtual void queue_error(std::string_view type, std::string_view code, std::string_view message) {
    queue_event(error_json(message, type, code));
  }

  // Same-dialect pass-through (ABI 1.3): whether this client can be given an
  // upstream's own bytes, one SSE event of a stream (before the canonical
  // chunks translated from it) and a whole 200 answer's body.
  virtual bool accepts_native() const { return false; }
  virtual void queue_native(std::string_view /*event*/, std::string_view /*data*/) {}
  virtual boost::asio::awaitable<bool> send_native(std::string_view body, const util::Headers& headers) {
    return send_json(200, body, headers);
  }
};

// What happened to a request, for the access log and metrics.
struct Outcome {
  int status = 0;     // HTTP status sent (499: the client went away first)
  std::string error;  // what went wrong, empty on success
  std::string pipeline;
  std::string provider;  // the provider that answered
  std::string tried;     // providers attempted, comma-separated, in order
  uint32_t attempts = 0;
  uint32_t retries = 0;  // attempts that repeated one on the same provider
  int64_t prompt_tokens = -1;
  int64_t completion_tokens = -1;
  bool usage_estimated = false;  // the upstream did not say: the host's estimate
  std::chrono::microseconds ttfb{0};
  bool stream = false;
};

struct EngineOptions {
  std::chrono::milliseconds pause_timeout{30'000};  // for a middleware hook that returned PAUSE
  size_t max_upstream_body = 64 * 1024 * 1024;
};

// Runs chat requests through a pipeline. One per worker thread.
class Engine {
 public:
  Engine(const Runtime& runtime, http::UpstreamClient& client, EngineOptions options = {})
      : runtime_(runtime), client_(client), options_(options) {}

  // POST /v1/chat/completions; ctx.request holds the body. Always answers the
  // client unless it went away.
  boost::asio::awaitable<Outcome> chat_completions(RequestContext& ctx, ClientWriter& out);
  // POST /v1/embeddings: the same pipelines, middleware, routing and
  // resilience, never streamed.
  boost::asio::awaitable<Outcome> embeddings(RequestContext& ctx, ClientWriter& out);

  const Runtime& runtime() const { return runtime_; }

 private:
  // Lets plugins make internal requests for ctx (ctx_call, ABI 1.2).
  void enable_calls(RequestContext& ctx);
  boost::asio::awaitable<void> run_call(boost::asio::any_io_executor ex, std::string parent,
                                        RequestContext::Operation op, std::string body,
                                        std::function<void(int, std::string)> done);
  const Runtime& runtime_;
  http::UpstreamClient& client_;
  EngineOptions options_;
};

}  // namespace ferry::pipeline
