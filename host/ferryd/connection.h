#pragma once

#include <chrono>
#include <memory>

#include <boost/beast/core/tcp_stream.hpp>

#include "host/ferryd/worker.h"

namespace ferry::host {

struct ClientWatchState;  // client_watch.h

// One accepted connection, registered with its worker so that a drain can
// close it while it waits for the next request, and so that the oldest idle
// ones can be shed when connections run short.
struct Connection {
  boost::beast::tcp_stream stream;
  std::shared_ptr<ClientWatchState> watch;  // made on its first request
  bool busy = false;                        // a request is being handled; otherwise it waits for one
  std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();  // accepted, or last busy
  explicit Connection(boost::asio::ip::tcp::socket s) : stream(std::move(s)) {}
};

// Keeps a connection in its worker's set and count for exactly its life,
// however its session ends.
class ConnectionEntry {
 public:
  ConnectionEntry(Worker& w, Connection& c) : w_(w), c_(c) {
    w_.connections.insert(&c_);
    w_.open_connections.fetch_add(1);
  }
  ~ConnectionEntry() {
    w_.connections.erase(&c_);
    w_.open_connections.fetch_sub(1);
  }
  ConnectionEntry(const ConnectionEntry&) = delete;
  ConnectionEntry& operator=(const ConnectionEntry&) = delete;

 private:
  Worker& w_;
  Connection& c_;
};

}  // namespace ferry::host
