#pragma once

#include <memory>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/pipeline/request_context.h"

namespace ferry::host {

// Notices a client that closes its connection while its request waits on
// an upstream (nothing is being written to it, so no write would fail) and
// cancels the request. Like nginx, a client's end of input counts as gone.
// Bytes instead (a pipelined next request) end the watch: they cannot be
// told from a close that follows them. One state per connection, reused by
// each of its requests.
class ClientWatch {
 public:
  // What ClientWatch keeps of a connection between its requests.
  struct State {
    boost::asio::ip::tcp::socket* socket = nullptr;  // valid while ctx is set
    pipeline::RequestContext* ctx = nullptr;         // null when no request is watched
    boost::asio::cancellation_signal stop;
  };

  ClientWatch(std::shared_ptr<State>& state, boost::asio::ip::tcp::socket& socket,
              pipeline::RequestContext& ctx);
  ~ClientWatch();
  ClientWatch(const ClientWatch&) = delete;
  ClientWatch& operator=(const ClientWatch&) = delete;

 private:
  static void arm(const std::shared_ptr<State>& st);
  std::shared_ptr<State>& state_;
};

}  // namespace ferry::host
