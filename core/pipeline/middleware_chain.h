#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <ferry/ferry.h>

#include "core/json/doc.h"
#include "core/pipeline/request_context.h"
#include "core/pipeline/runtime.h"

namespace ferry::pipeline {

// What a middleware hook came to once a PAUSE was settled.
struct HookOutcome {
  enum class Kind {
    kContinue,  // every middleware let it through
    kRespond,   // answer the client with ctx.respond_status/body (on_request, on_response)
    kSkip,      // leave this provider out (on_attempt)
    kFailed,    // an error status, an invalid document, or a return the hook may not give
    kTimedOut,  // PAUSE without resume within the pause timeout
  };
  Kind kind = Kind::kContinue;
  const Middleware* middleware = nullptr;  // the one that did not continue
  std::string message;                     // kFailed, kTimedOut: what went wrong, for the client

  bool proceeds() const { return kind == Kind::kContinue; }
  // What the client is told when a failure ends the request.
  int http_status() const { return kind == Kind::kTimedOut ? 504 : 500; }
  const char* error_type() const { return kind == Kind::kTimedOut ? "timeout_error" : "server_error"; }
};

// The middleware of one request: their per-request filters (made as the
// request enters each one, freed with the chain) and the hooks, driven by one
// function that calls the hook, settles FERRY_PAUSE within the pause timeout
// and says what came of it. on_request and on_attempt run in pipeline order,
// on_response, on_chunk and on_complete in reverse.
class MiddlewareChain {
 public:
  MiddlewareChain(RequestContext& ctx, std::chrono::milliseconds pause_timeout)
      : ctx_(ctx), pause_timeout_(pause_timeout) {}
  ~MiddlewareChain() { free_filters(); }
  MiddlewareChain(const MiddlewareChain&) = delete;
  MiddlewareChain& operator=(const MiddlewareChain&) = delete;

  // Makes each middleware's filter and runs its on_request on ctx.request,
  // one middleware after the other: a middleware that answers or fails stops
  // the request before the next one is made.
  boost::asio::awaitable<HookOutcome> on_request(const std::vector<const Middleware*>& middleware);
  // Before each attempt on `provider`; only kContinue lets it go ahead.
  boost::asio::awaitable<HookOutcome> on_attempt(std::string_view provider);
  boost::asio::awaitable<HookOutcome> on_response(json::Doc& response);
  boost::asio::awaitable<HookOutcome> on_chunk(json::Doc& chunk);
  // The request is over: every filter hears it, then they are freed.
  void on_complete(const ferry_request_summary& summary);

  // Callers skip a hook nobody implements without entering a coroutine: a
  // stream's chunks are not parsed or driven when no middleware looks at them.
  bool has_attempt_hooks() const { return has(Hook::kAttempt); }
  bool has_response_hooks() const { return has(Hook::kResponse); }
  bool has_chunk_hooks() const { return has(Hook::kChunk); }

 private:
  enum class Hook : uint8_t { kRequest, kAttempt, kResponse, kChunk };
  struct ActiveFilter {
    const Middleware* middleware;
    ferry_filter* filter = nullptr;
  };

  // The driver: runs `hook` on filters [first, last) (in reverse for the
  // answer's way back), stopping at the first that does not continue.
  boost::asio::awaitable<HookOutcome> drive(Hook hook, json::Doc* doc, std::string_view provider,
                                            size_t first, size_t last);
  // Calls the hook's slot; false if the middleware does not implement it.
  bool call(const ActiveFilter& f, Hook hook, json::Doc* doc, std::string_view provider, ferry_status& st);
  HookOutcome classify(const ActiveFilter& f, Hook hook, ferry_status st, bool timed_out,
                       json::Doc* doc) const;
  bool has(Hook hook) const { return hooks_ & (1u << static_cast<unsigned>(hook)); }
  void free_filters();

  RequestContext& ctx_;
  std::chrono::milliseconds pause_timeout_;
  std::vector<ActiveFilter> filters_;
  unsigned hooks_ = 0;  // bit per Hook some filter implements
};

}  // namespace ferry::pipeline
