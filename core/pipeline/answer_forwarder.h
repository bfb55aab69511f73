#pragma once

#include <cstdint>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "core/json/doc.h"
#include "core/pipeline/client_stream.h"
#include "core/pipeline/engine.h"
#include "core/pipeline/failure.h"
#include "core/pipeline/middleware_chain.h"
#include "core/pipeline/request_context.h"
#include "core/pipeline/runtime.h"
#include "core/pipeline/usage_estimate.h"

namespace ferry::pipeline {

// Takes a provider's answer the rest of the way: usage into the outcome,
// on_response / on_chunk through the middleware chain, the max_tokens bound
// on streams, then the client stream. Lives as long as the request: what was
// forwarded is counted across attempts.
class AnswerForwarder {
 public:
  AnswerForwarder(RequestContext& ctx, MiddlewareChain& chain, ClientStream& stream, Outcome& outcome)
      : ctx_(ctx), chain_(chain), stream_(stream), outcome_(outcome) {}

  // The request's model once middleware ran, and the bound a stream may not
  // pass: max_tokens (or max_completion_tokens, -1 for none) times n choices.
  void set_bound(std::string model, int64_t completion_bound, int64_t choices) {
    requested_model_ = std::move(model);
    completion_bound_ = completion_bound;
    choices_ = choices;
  }

  // A whole answer to a non-streaming request. Always reaches an end: the
  // answer, a middleware's own answer or its error. With `native`, the
  // upstream's own body reaches the client (same-dialect pass-through) while
  // `response`, its canonical translation, is what is accounted.
  boost::asio::awaitable<void> deliver_response(json::Doc& response, std::string_view native = {});
  // One chunk of a stream. False if the attempt cannot go on: the client is
  // gone, the stream was aborted, or (before anything was sent) the chunk was
  // not a JSON object, which rejected() then describes.
  boost::asio::awaitable<bool> deliver_chunk(json::Doc chunk);
  const Failure& rejected() const { return rejected_; }

  // The last chunk delivered was not forwarded: it would have passed the
  // bound. The caller ends the stream with end_at_bound().
  bool over_bound() const { return over_bound_; }
  bool cut_at_bound() const { return cut_at_bound_; }
  boost::asio::awaitable<void> end_at_bound(const Provider& p);

  // The answer's text as forwarded, for usage an upstream did not report.
  const ForwardedText& forwarded() const { return forwarded_; }

 private:
  RequestContext& ctx_;
  MiddlewareChain& chain_;
  ClientStream& stream_;
  Outcome& outcome_;
  std::string requested_model_;
  int64_t completion_bound_ = -1;  // none
  int64_t choices_ = 1;
  ForwardedText forwarded_;
  bool over_bound_ = false;
  bool cut_at_bound_ = false;
  Failure rejected_;
};

}  // namespace ferry::pipeline
