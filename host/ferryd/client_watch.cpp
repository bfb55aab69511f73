#include "host/ferryd/client_watch.h"

#include <sys/socket.h>
#include <cerrno>

#include <boost/asio/bind_cancellation_slot.hpp>

namespace ferry::host {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

ClientWatch::ClientWatch(std::shared_ptr<State>& state, tcp::socket& socket, pipeline::RequestContext& ctx)
    : state_(state) {
  if (!state_) state_ = std::make_shared<State>();
  state_->socket = &socket;
  state_->ctx = &ctx;
  arm(state_);
}

ClientWatch::~ClientWatch() {
  state_->ctx = nullptr;  // from here a late handler touches nothing
  state_->stop.emit(asio::cancellation_type::terminal);
}

void ClientWatch::arm(const std::shared_ptr<State>& st) {
  auto* ctx = st->ctx;
  st->socket->async_wait(
      tcp::socket::wait_read,
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

}  // namespace ferry::host
