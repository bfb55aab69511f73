#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "core/pipeline/engine.h"
#include "core/pipeline/failure.h"
#include "core/pipeline/request_context.h"
#include "core/pipeline/runtime.h"

namespace ferry::pipeline {

// What one attempt on one provider came to.
struct AttemptReport {
  enum class Result {
    kSuccess,   // the client got the provider's answer
    kFailed,    // failed before the client got anything: another attempt may follow
    kFinished,  // ended after the client got something (a broken stream, a client gone)
  };
  Result result = Result::kFailed;
  // kFailed: why. Owned by whoever made the attempt, valid until its next
  // attempt: a report is copied on every request, a Failure is five strings.
  const Failure* failure = nullptr;
  bool deadline_cut = false;  // the request's deadline shortened the attempt's time
  bool broke_stream = false;  // failed after its first byte reached the client
};

// What the failover driver needs from the request it serves: the engine
// gives it middleware, sockets and timers, a test gives it fakes.
class FailoverHost {
 public:
  virtual ~FailoverHost() = default;
  // Whether any middleware may veto a provider: when none can, skipped_by
  // is not entered (a coroutine frame per attempt saved).
  virtual bool may_skip() const { return true; }
  // on_attempt middleware: the name of the one that vetoed `p`, or "".
  virtual boost::asio::awaitable<std::string> skipped_by(const Provider& p) = 0;
  virtual boost::asio::awaitable<AttemptReport> attempt(const Provider& p, ModelState& model) = 0;
  // A backoff; cancelling the request cuts it short.
  virtual boost::asio::awaitable<void> sleep(std::chrono::milliseconds d) = 0;
  virtual std::chrono::steady_clock::time_point now() = 0;
  virtual double unit_random() = 0;  // uniform in [0, 1), for jitter
  virtual void emit(const Runtime::Event& event) = 0;
};

// How failover ended.
enum class FailoverEnd {
  kAnswered,   // an attempt reached the client (Outcome::provider says which)
  kAbandoned,  // the request was cancelled during an attempt or a backoff
  kReturn,     // an error the client gets as is (failure()): no provider would do better
  kExhausted,  // every provider failed, or the deadline passed: failure() sums it up
};

// Walks the router's ordered providers for one request. Per provider:
// on_attempt may skip it, its breaker must admit it, then attempts and
// retries (exponential backoff with full jitter, Retry-After up to
// max_retry_after, never past the deadline); the pipeline's action for the
// error class decides between retrying, failing over and returning. After a
// context-length error only providers with a larger context_window follow.
// Records stats, latency EWMAs and breaker results, and emits
// provider_failed / provider_switched / breaker events.
class Failover {
 public:
  struct Request {
    const resilience::Policy& policy;
    std::string_view pipeline;
    // Until the first byte; time_point::max() for none.
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
    int64_t deadline_ms = 0;  // for the message when it passes
  };
  Failover(FailoverHost& host, RequestContext& ctx, Request request, Outcome& outcome)
      : host_(host), ctx_(ctx), request_(request), outcome_(outcome) {}

  boost::asio::awaitable<FailoverEnd> run(const std::vector<const Provider*>& order);
  // After kReturn or kExhausted: what the client is to be told.
  const Failure& failure() const { return failure_; }

 private:
  void record(const Provider& p, ModelState& model, const AttemptReport& report,
              std::chrono::microseconds took);

  FailoverHost& host_;
  RequestContext& ctx_;
  Request request_;
  Outcome& outcome_;
  std::vector<Failure> failures_;
  Failure failure_;                            // the answer for kReturn / kExhausted
  Failure last_failure_;                       // of the last attempt or skip, for provider_switched
  std::string last_failed_provider_;           // for provider_switched
  std::optional<int64_t> min_context_window_;  // after a context-length error
};

// A provider's context_window attribute, if it has a numeric one.
std::optional<int64_t> context_window(const Provider& p);

}  // namespace ferry::pipeline
