#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/plugin/host_api.h"

namespace ferry::host {

// A middleware's answer to an admin request (on_admin, ABI 1.2). It arrives
// from any thread; the admin coroutine waits for it on a timer that the
// answer cancels.
class PluginReply final : public plugin::AdminReplySink, public std::enable_shared_from_this<PluginReply> {
 public:
  explicit PluginReply(boost::asio::any_io_executor ex) : ex_(std::move(ex)), timer_(ex_) {}
  void reply(int status, std::string body) override;
  // The answer, or nothing when none came within `timeout` (a late one is dropped).
  boost::asio::awaitable<std::optional<std::pair<int, std::string>>> wait(std::chrono::milliseconds timeout);

 private:
  boost::asio::any_io_executor ex_;
  boost::asio::steady_timer timer_;
  std::mutex mu_;
  bool done_ = false;
  int status_ = 0;
  std::string body_;
};

}  // namespace ferry::host
