#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "core/json/doc.h"
#include "core/pipeline/engine.h"
#include "core/pipeline/request_context.h"
#include "core/pipeline/runtime.h"
#include "host/ferryd/frontend_writer.h"

namespace ferry::host {

// A request as the listener read it, for a frontend's route. The views point
// into the listener's request, which outlives the call.
struct RouteRequest {
  std::string_view method;
  std::string_view path;    // target without its query
  std::string_view target;  // path and query
  std::string body;         // moved out of the listener's request
  bool post = false;
};

// One request on a frontend's route: decoded into the canonical request,
// then served by the route's operation, every answer encoded back. Knows no
// sockets: the listener matched the route and owns the connection.
class RouteHandler {
 public:
  // `limits` bound the JSON of a client's body; `started_unix` is the
  // "created" of every model in a model list.
  RouteHandler(const pipeline::Runtime& runtime, const json::ParseLimits& limits, int64_t started_unix)
      : runtime_(runtime), limits_(limits), started_unix_(started_unix) {}

  boost::asio::awaitable<pipeline::Outcome> serve(pipeline::Engine& engine, RouteRequest& req,
                                                  const pipeline::Frontend& frontend, size_t route,
                                                  pipeline::RequestContext& ctx,
                                                  FrontendWriter& writer) const;

 private:
  const pipeline::Runtime& runtime_;
  const json::ParseLimits& limits_;
  int64_t started_unix_;
};

}  // namespace ferry::host
