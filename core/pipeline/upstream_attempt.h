#pragma once

#include <chrono>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "core/http/upstream_client.h"
#include "core/pipeline/answer_forwarder.h"
#include "core/pipeline/async_state.h"
#include "core/pipeline/client_stream.h"
#include "core/pipeline/engine.h"
#include "core/pipeline/failover.h"
#include "core/pipeline/request_context.h"
#include "core/pipeline/runtime.h"

namespace ferry::pipeline {

// One attempt of a request on one provider: the adapter builds the upstream
// request (or serves it in process), the host does the I/O, the adapter's
// events go to the AnswerForwarder. Reused for every attempt of the request.
class UpstreamAttempt {
 public:
  UpstreamAttempt(RequestContext& ctx, http::UpstreamClient& client, const EngineOptions& options,
                  ClientStream& stream, AnswerForwarder& forwarder)
      : ctx_(ctx), client_(client), options_(options), stream_(stream), forwarder_(forwarder) {}

  // The request's model once middleware ran (a provider may map it), and the
  // deadline for the first byte (time_point::max() for none).
  void set_request(std::string model, std::chrono::steady_clock::time_point deadline) {
    requested_model_ = std::move(model);
    deadline_ = deadline;
  }
  // Whether an upstream of the client's dialect may answer it with its own
  // bytes: only when no middleware reads or edits the answer on its way.
  void allow_native(bool allowed) { native_allowed_ = allowed; }

  // `model` is p's state for this request's model: its time to first byte
  // feeds least-latency routing.
  boost::asio::awaitable<AttemptReport> run(const Provider& p, ModelState& model);

 private:
  using Result = AttemptReport::Result;
  void prepare_upstream_request(const Provider& p);
  boost::asio::awaitable<AttemptReport> http_attempt(const Provider& p);
  boost::asio::awaitable<AttemptReport> serve_attempt(const Provider& p);
  // What the attempt came to, with its failure, flags and all.
  AttemptReport report(Result result) const;
  // Handles one sink event; sets done when the attempt is over.
  boost::asio::awaitable<Result> on_event(SinkEvent& ev, const Provider& p, bool& done);
  // An attempt went wrong: before the first byte the next provider may take
  // over (kFailed); after it, the stream ends with an error event (kFinished).
  boost::asio::awaitable<Result> fail(Failure f);
  Result failed(Failure f) {
    failure_ = std::move(f);
    return Result::kFailed;
  }
  // A delivery that could not go on: after the first byte there is nothing
  // to fail over to.
  Result undelivered() {
    if (stream_.committed()) return Result::kFinished;
    failure_ = forwarder_.rejected();
    return Result::kFailed;
  }
  // A provider's attempt limits, shortened to what is left of the deadline.
  http::UpstreamOptions limits(const Provider& p);
  void first_byte(const Provider& p);

  RequestContext& ctx_;
  http::UpstreamClient& client_;
  const EngineOptions& options_;
  ClientStream& stream_;
  AnswerForwarder& forwarder_;
  std::string requested_model_;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  bool native_allowed_ = false;

  // The current attempt.
  ModelState* model_ = nullptr;
  std::chrono::steady_clock::time_point started_;
  bool first_byte_seen_ = false;
  bool deadline_cut_ = false;  // its time ran out because of the deadline
  bool broke_stream_ = false;  // it failed after its first byte
  Failure failure_;
  std::vector<SinkEvent> batch_;  // the provider's events being handled, reused
};

}  // namespace ferry::pipeline
