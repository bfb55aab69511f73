#include "host/ferryd/plugin_reply.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace ferry::host {

namespace asio = boost::asio;

void PluginReply::reply(int status, std::string body) {
  {
    std::lock_guard lock(mu_);
    if (done_) return;
    done_ = true;
    status_ = status;
    body_ = std::move(body);
  }
  asio::post(ex_, [self = shared_from_this()] { self->timer_.cancel(); });
}

asio::awaitable<std::optional<std::pair<int, std::string>>> PluginReply::wait(
    std::chrono::milliseconds timeout) {
  timer_.expires_after(timeout);
  {
    std::lock_guard lock(mu_);
    if (done_) co_return std::pair{status_, std::move(body_)};
  }
  co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  std::lock_guard lock(mu_);
  if (!done_) {
    done_ = true;  // a late reply is dropped
    co_return std::nullopt;
  }
  co_return std::pair{status_, std::move(body_)};
}

}  // namespace ferry::host
