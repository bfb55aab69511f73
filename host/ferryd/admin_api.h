#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "core/pipeline/runtime.h"
#include "host/ferryd/status_views.h"

namespace ferry::host {

// An admin request as the listener read it; the views point into its buffers.
struct AdminRequest {
  std::string_view method;
  std::string_view target;         // path and query
  std::string_view authorization;  // the Authorization header, empty when absent
  std::string_view body;
};

// The admin API, apart from HTTP: GET /admin/providers, /admin/pipelines,
// /health, POST /admin/providers/NAME/drain|enable, and METHOD
// /admin/plugins/NAME/... for a middleware's on_admin. Every route is behind
// the one bearer-token check in authorized().
class AdminApi {
 public:
  // `token` empty: no authentication (the listener is on loopback by default).
  AdminApi(const pipeline::Runtime& runtime, const ServerState& state, std::string token)
      : runtime_(runtime), state_(state), token_(std::move(token)) {}

  // The status and JSON body of the answer. `executor` is the admin
  // listener's: a plugin's answer is awaited there.
  boost::asio::awaitable<std::pair<int, std::string>> handle(const AdminRequest& req,
                                                             boost::asio::any_io_executor executor) const;

  bool authorized(std::string_view authorization) const;

 private:
  std::pair<int, std::string> route(const AdminRequest& req) const;
  std::pair<int, std::string> drain_or_enable(std::string_view name, std::string_view verb) const;
  boost::asio::awaitable<std::pair<int, std::string>> to_plugin(const AdminRequest& req,
                                                                boost::asio::any_io_executor executor) const;

  const pipeline::Runtime& runtime_;
  const ServerState& state_;
  std::string token_;
};

}  // namespace ferry::host
