#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <ferry/ferry.h>

#include "core/json/doc.h"

namespace ferry::pipeline {

// The part of a request that plugins may touch from other threads: resume(),
// schedule() and serve() sinks. Shared-owned so that a late call from another
// thread finds it alive even after the request moved on; everything that runs
// on the worker thread goes through `executor`.
class AsyncState : public std::enable_shared_from_this<AsyncState> {
 public:
  explicit AsyncState(boost::asio::any_io_executor executor);

  const boost::asio::any_io_executor& executor() const { return executor_; }

  // --- resume (PAUSE) ---
  ferry_status resume(ferry_status result);  // any thread
  // Waits on the worker thread until resume() or the timeout; nullopt on timeout.
  boost::asio::awaitable<std::optional<ferry_status>> wait_resume(std::chrono::milliseconds timeout);

  // --- schedule ---
  ferry_status schedule(uint64_t delay_ns, ferry_task_fn fn, ferry_task* task);  // any thread

  // Runs fn on the worker thread (any thread may call); fn(true) if the
  // request has ended by then.
  void post(std::function<void(bool ended)> fn);

  // Ends the request: pending tasks run now with cancelled = 1 and later
  // calls are refused. Worker thread only.
  void end();
  bool ended() const;

  // Wakes whoever waits in wait_resume() or a sink, on the worker thread.
  void wake();
  // The request is being abandoned (its client went away, or a drain gave
  // up): a wait in progress returns now, as if timed out, and so does every
  // later one. Worker thread only.
  void cancel();
  bool cancelled() const { return cancelled_; }
  boost::asio::steady_timer& wake_timer() { return wake_timer_; }

 private:
  struct Task {
    explicit Task(const boost::asio::any_io_executor& ex) : timer(ex) {}
    boost::asio::steady_timer timer;
    ferry_task_fn fn = nullptr;
    ferry_task* arg = nullptr;
    bool fired = false;  // guarded by mu_
  };
  void fire(const std::shared_ptr<Task>& task, bool cancelled);

  boost::asio::any_io_executor executor_;
  boost::asio::steady_timer wake_timer_;
  mutable std::mutex mu_;
  bool ended_ = false;
  bool cancelled_ = false;  // worker thread only
  bool resumed_ = false;
  ferry_status resume_result_ = FERRY_OK;
  std::vector<std::shared_ptr<Task>> tasks_;
};

// What a provider delivers through ferry_sink.
struct SinkEvent {
  // kNative (1.3): an upstream's own SSE event for a client of its dialect:
  // `type` is the event name, `message` its data.
  enum class Kind { kResponse, kChunk, kDone, kError, kNative };
  Kind kind;
  json::Doc doc;     // response or chunk
  int status = 0;    // kError: the HTTP status that decides failover
  std::string type;  // kError
  std::string message;
  // The adapter handed back the hook's input document unchanged (an upstream
  // body or event in the canonical format already): `doc` is filled from it
  // once the hook returns, without copying or parsing it again.
  bool from_source = false;
  // kError from sink_fail (1.3): the class the adapter named (a
  // ferry_error_class, 0 for "from the status"), a code and a retry-after.
  int32_t error_class = 0;
  std::string code;
  uint64_t retry_after_ms = 0;
};

// A provider's result queue for one attempt. Thread-safe: a serve() provider
// may deliver from any thread. Events after the terminal one, or after the
// host abandoned the attempt, are dropped.
class Sink {
 public:
  explicit Sink(std::shared_ptr<AsyncState> async) : async_(std::move(async)) {}

  ferry_status push(SinkEvent event);  // any thread
  // While a parse hook runs, the document it was given. JSON the adapter
  // passes back that is this very text is recognised by pointer.
  void set_source(json::Doc* doc) { source_ = doc; }
  bool is_source(std::string_view json);
  // After the hook: moves the source document into the event that refers to it.
  void adopt_source();
  // Takes everything queued so far into `out` (cleared first); swapping
  // buffers keeps both allocations alive for the next batch.
  void drain_into(std::vector<SinkEvent>& out);
  std::vector<SinkEvent> drain() {
    std::vector<SinkEvent> out;
    drain_into(out);
    return out;
  }
  // Waits (worker thread) until an event is queued or the timeout passes;
  // returns false on timeout.
  boost::asio::awaitable<bool> wait(std::chrono::milliseconds timeout);
  void abandon();
  bool terminated() const;
  bool has_events() const;
  // Events queued and not drained yet.
  size_t pending() const;
  // After an adapter handled an upstream error event: unless it reported an
  // error, what it queued since `mark` (pending() before) is dropped and an
  // error (502, server_error, `message`) takes its place.
  void error_unless_handled(size_t mark, std::string message);

 private:
  std::shared_ptr<AsyncState> async_;
  mutable std::mutex mu_;
  std::vector<SinkEvent> events_;
  bool terminal_seen_ = false;
  bool abandoned_ = false;
  bool waiting_ = false;         // someone waits in wait(): a push must wake it
  json::Doc* source_ = nullptr;  // worker thread only (parse hooks are not serve())
};

}  // namespace ferry::pipeline
