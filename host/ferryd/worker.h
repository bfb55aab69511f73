#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/http/upstream_client.h"
#include "core/pipeline/engine.h"
#include "core/pipeline/request_context.h"

namespace ferry::host {

struct Connection;  // connection.h: only the listener needs its insides

// One event loop on its own thread: a data-plane worker (its acceptor, its
// upstream connections, its engine), the admin listener or the health checker.
struct Worker {
  boost::asio::io_context io{1};
  std::optional<boost::asio::ip::tcp::acceptor> acceptor;
  std::unique_ptr<http::UpstreamClient> upstream;
  std::unique_ptr<pipeline::Engine> engine;
  std::unordered_set<Connection*> connections;             // worker thread only
  std::unordered_set<pipeline::RequestContext*> requests;  // in flight; worker thread only
  std::atomic<size_t> open_connections{0};
  std::atomic<size_t> active_requests{0};
  std::thread thread;

  // Runs io on `thread`. A handler that throws is a bug, but it must not take
  // the daemon down: it is logged and the loop goes on. (Coroutines do not
  // throw into run(): each co_spawn has a LogIfFailed.)
  void run_on_thread(const char* what);
  // Stops the loop and waits for its thread.
  void stop();
  // Opens, binds and listens; SO_REUSEPORT when several workers share a port.
  void listen(const boost::asio::ip::tcp::endpoint& endpoint, bool reuse_port, boost::system::error_code& ec);
};

// Counts a request as active, and lets a drain that gives up cancel it.
class RequestEntry {
 public:
  RequestEntry(Worker& w, pipeline::RequestContext& ctx) : w_(w), ctx_(ctx) { w_.requests.insert(&ctx_); }
  ~RequestEntry() { w_.requests.erase(&ctx_); }
  RequestEntry(const RequestEntry&) = delete;
  RequestEntry& operator=(const RequestEntry&) = delete;

 private:
  Worker& w_;
  pipeline::RequestContext& ctx_;
};

// Holds a worker's active-request count up for exactly a request's life.
class ActiveCount {
 public:
  explicit ActiveCount(std::atomic<size_t>& n) : n_(n) { n_.fetch_add(1); }
  ~ActiveCount() { n_.fetch_sub(1); }
  ActiveCount(const ActiveCount&) = delete;
  ActiveCount& operator=(const ActiveCount&) = delete;

 private:
  std::atomic<size_t>& n_;
};

}  // namespace ferry::host
