#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "core/json/doc.h"
#include "core/pipeline/engine.h"
#include "core/pipeline/failure.h"
#include "core/pipeline/request_context.h"

namespace ferry::pipeline {

// What the client of one request has been sent, and every way of sending it
// more. Before the response is committed (headers out) a failure can still
// fail over; after it, a failure can only end the stream with an error event.
// The status, error and time to first byte it writes go to `outcome`.
class ClientStream {
 public:
  ClientStream(RequestContext& ctx, ClientWriter& out, Outcome& outcome)
      : ctx_(ctx), out_(out), outcome_(outcome) {}

  // What the client asked for in stream_options (a replayed answer carries
  // usage only then), and how many chunks to hold back before committing.
  void set_include_usage(bool include) { include_usage_ = include; }
  bool include_usage() const { return include_usage_; }
  void set_hold_chunks(uint32_t n) { hold_chunks_ = n; }

  bool committed() const { return committed_; }
  bool client_gone() const { return client_gone_; }

  // An OpenAI error JSON with `status` (and Retry-After when given).
  boost::asio::awaitable<void> reply_error(int status, std::string message, std::string_view type,
                                           std::string_view code, std::string_view retry_after = {});
  boost::asio::awaitable<void> reply_failure(const Failure& f);
  // The answer a plugin gave with FERRY_RESPOND (ctx.respond_status/body),
  // whichever hook gave it. A 200 to a client that asked for a stream is
  // replayed as one (a cached answer, say): a streaming client always gets
  // Server-Sent Events. Returns false if the client is gone (status 499).
  boost::asio::awaitable<bool> respond();
  // A whole (non-streamed) answer with status 200. Not a coroutine (the
  // writer's own awaitable, no frame of its own): if it yields false the
  // caller says so with lost_answer().
  boost::asio::awaitable<bool> send_answer(std::string_view body);
  void lost_answer() { outcome_.status = 499; }

  // A chunk for a streaming client: held back while fewer than the
  // pipeline's stream_hold_chunks are (a failure can still fail over), else
  // queued, committing the response first.
  void send_chunk(std::string_view chunk);
  // Commits a streamed response: headers, then the chunks held back.
  void start();
  // Same-dialect pass-through (ABI 1.3): whether the client can take an
  // upstream's own bytes; one event of a stream (committing it), and a whole
  // answer's body.
  bool accepts_native() const { return out_.accepts_native(); }
  void send_native_event(std::string_view event, std::string_view data);
  boost::asio::awaitable<bool> send_native_answer(std::string_view body);
  // Chunks of a provider that failed before anything was sent.
  void drop_held() { held_.clear(); }
  // Queues an event on a committed stream.
  void queue(std::string_view event) { out_.queue_event(event); }
  // Writes what was queued; after this the client has every event so far.
  boost::asio::awaitable<bool> flush();
  // [DONE] and the end of the body (committing first if nothing was sent).
  boost::asio::awaitable<void> finish();
  // A stream that broke after it started: an error event, then [DONE].
  boost::asio::awaitable<void> abort(const std::string& message);
  // The request was cancelled: a client that went away gets nothing (499);
  // one whose request a drain gave up on is told why, if nothing was sent.
  boost::asio::awaitable<void> abandon();

  std::chrono::microseconds since_start() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                 ctx_.received_at);
  }

 private:
  RequestContext& ctx_;
  ClientWriter& out_;
  Outcome& outcome_;
  bool include_usage_ = false;
  uint32_t hold_chunks_ = 0;
  bool committed_ = false;  // response headers are out: no more failover
  bool client_gone_ = false;
  std::vector<std::string> held_;  // chunks held back (stream_hold_chunks)
};

// A whole chat.completion turned into the chunks a streaming client expects,
// for a provider (or a plugin) that answered a streaming request in one piece.
std::vector<std::string> response_to_chunks(const json::Value& r, bool include_usage);

}  // namespace ferry::pipeline
