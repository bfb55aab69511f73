#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/cancellation_signal.hpp>

#include "core/json/doc.h"
#include "core/pipeline/async_state.h"
#include "core/util/headers.h"

namespace ferry::pipeline {

// Everything the host knows about one client request: what ferry_ctx points to.
// Lives on the worker thread that accepted the request, from the moment the
// request is read until on_complete has run.
class RequestContext {
 public:
  RequestContext(boost::asio::any_io_executor executor, std::string request_id)
      : async(std::make_shared<AsyncState>(std::move(executor))), request_id(std::move(request_id)) {}
  ~RequestContext() { async->end(); }
  RequestContext(const RequestContext&) = delete;
  RequestContext& operator=(const RequestContext&) = delete;

  std::shared_ptr<AsyncState> async;

  // The client went away (no `reason`: the request ends unanswered, status
  // 499), or a drain gave up on it (`reason` says so to the client): the wait
  // in progress (an upstream exchange, a paused hook, a backoff) ends now.
  // Worker thread only.
  void cancel(std::string reason = {}) {
    if (cancelled_) return;
    cancelled_ = true;
    cancel_reason_ = std::move(reason);
    async->cancel();
    upstream_cancel_.emit(boost::asio::cancellation_type::terminal);
  }
  bool cancelled() const { return cancelled_; }
  const std::string& cancel_reason() const { return cancel_reason_; }
  // Bound to upstream I/O so that cancel() reaches it.
  boost::asio::cancellation_slot upstream_cancel_slot() { return upstream_cancel_.slot(); }

  std::string request_id;
  std::string client_addr;
  std::string pipeline;
  std::string model;
  std::string provider;  // current attempt
  bool stream = false;
  // What the client asks for: a chat completion, embeddings, or the model list.
  enum class Operation { kChat, kEmbeddings, kModels } operation = Operation::kChat;
  const char* operation_name() const {
    switch (operation) {
      case Operation::kChat: return "chat.completions";
      case Operation::kEmbeddings: return "embeddings";
      case Operation::kModels: return "models";
    }
    return "chat.completions";
  }
  // The frontend instance ([frontends.NAME]) the request came in through,
  // and its dialect (the frontend plugin's name).
  std::string frontend;
  std::string dialect;
  // The client's body as it arrived (ABI 1.3 ctx_native_body), the request's
  // generation once decoded, and (set after on_request) whether middleware
  // left the request as decoded: only then may the native body go upstream.
  std::string client_body;
  uint64_t decoded_generation = 0;
  bool native_body_valid = false;

  // Typed control from middleware (ABI 1.3): a deadline set in on_request
  // (ms after arrival, 0 for none), and why an on_attempt skipped its
  // provider. Worker thread only.
  uint64_t middleware_deadline_ms = 0;
  struct Skip {
    bool set = false;
    std::string reason;
    uint64_t retry_after_ms = 0;
  } skip;
  // A plugin's own request through the pipelines (ctx_call): no middleware,
  // never streamed, no access log line.
  bool internal = false;
  // Set by the engine: runs such a request and calls `done` on this worker.
  // A plain function and its owner, not a std::function: set on every
  // request, used by few, so it must cost no allocation.
  using CallDone = std::function<void(int status, std::string body)>;
  void (*call)(void* owner, RequestContext& ctx, Operation op, std::string body, CallDone done) = nullptr;
  void* call_owner = nullptr;
  util::Headers client_headers;
  std::chrono::steady_clock::time_point received_at = std::chrono::steady_clock::now();

  json::Doc request;  // the canonical request, edited by middleware

  // Metadata plugins share (ctx_set_tag): auth's "key", "user", "team" ...
  std::vector<std::pair<std::string, std::string>> tags;
  const std::string* tag(std::string_view name) const {
    for (const auto& [k, v] : tags)
      if (k == name) return &v;
    return nullptr;
  }

  util::Headers upstream_headers;  // added to every upstream request
  util::Headers response_headers;  // added to the client response
  bool response_started = false;

  // Set by ctx_respond for a hook that returns FERRY_RESPOND.
  int respond_status = 0;
  std::string respond_body;

  // Documents created by plugins (json_new / json_copy), freed with the request.
  json::Doc* new_doc(json::Doc doc) { return &owned_docs_.emplace_back(std::move(doc)); }
  // Sinks stay valid for the request's whole life: a serve() provider may still
  // hold one after the host gave up on its attempt.
  Sink* new_sink() { return sinks_.emplace_back(std::make_shared<Sink>(async)).get(); }

 private:
  std::deque<json::Doc> owned_docs_;
  std::deque<std::shared_ptr<Sink>> sinks_;
  bool cancelled_ = false;
  std::string cancel_reason_;
  boost::asio::cancellation_signal upstream_cancel_;
};

}  // namespace ferry::pipeline
