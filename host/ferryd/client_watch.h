#pragma once

// Header-only: the data-plane sessions (sessions.cpp) are its one user.

#include <sys/socket.h>
#include <cerrno>
#include <memory>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/pipeline/request_context.h"

namespace ferry::host {

// What ClientWatch keeps of a connection between its requests.
struct ClientWatchState {
  boost::asio::ip::tcp::socket* socket = nullptr;  // valid while ctx is set
  pipeline::RequestContext* ctx = nullptr;         // null when no request is watched
  boost::asio::cancellation_signal stop;
};

// Notices a client that closes its connection while its request waits on
// an upstream (nothing is being written to it, so no write would fail) and
// cancels the request. Like nginx, a client's end of input counts as gone.
// Bytes instead (a pipelined next request) end the watch: they cannot be
// told from a close that follows them. One state per connection, reused by
// each of its requests.
class ClientWatch {
 public:
  using State = ClientWatchState;
  ClientWatch(std::shared_ptr<State>& state, boost::asio::ip::tcp::socket& socket,
              pipeline::RequestContext& ctx)
      : state_(state) {
    if (!state_) state_ = std::make_shared<State>();
    state_->socket = &socket;
    state_->ctx = &ctx;
    arm(state_);
  }
  ~ClientWatch() {
    state_->ctx = nullptr;  // from here a late handler touches nothing
    state_->stop.emit(boost::asio::cancellation_type::terminal);
  }
  ClientWatch(const ClientWatch&) = delete;
  ClientWatch& operator=(const ClientWatch&) = delete;

 private:
  static void arm(const std::shared_ptr<State>& st) {
    namespace asio = boost::asio;
    auto* ctx = st->ctx;
    st->socket->async_wait(
        asio::ip::tcp::socket::wait_read,
        asio::bind_cancellation_slot(st->stop.slot(), [st, ctx](const boost::system::error_code& ec) {
          // A handler from an earlier request of the connection finds another ctx.
          if (st->ctx != ctx || !ctx) return;
          if (ec) {
            if (ec != asio::error::operation_aborted) ctx->cancel();
            return;
          }
          char byte;
          ssize_t n = ::recv(st->socket->native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
          if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            ctx->cancel();
          else if (n < 0)
            arm(st);
        }));
  }
  std::shared_ptr<State>& state_;
};

}  // namespace ferry::host
