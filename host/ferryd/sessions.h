#pragma once

#include <functional>
#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/pipeline/runtime.h"
#include "host/ferryd/admin_api.h"
#include "host/ferryd/server.h"
#include "host/ferryd/status_views.h"
#include "host/ferryd/worker.h"

namespace ferry::host {

// The HTTP conversations on accepted connections: a data-plane session reads
// requests (limits, timeouts, 100-continue), answers /health and /metrics,
// sends every other request down its frontend's route, and writes the access
// log; an admin session hands requests to AdminApi. Beast stays behind this
// header: sessions.cpp is the one translation unit of ferryd that compiles
// its HTTP templates.
class HttpSessions {
 public:
  // `traffic` samples the listener's counts for /metrics.
  HttpSessions(const pipeline::Runtime& runtime, const ServerOptions& options, const ServerState& state,
               const AdminApi& admin, std::function<Traffic()> traffic);
  ~HttpSessions();
  HttpSessions(const HttpSessions&) = delete;
  HttpSessions& operator=(const HttpSessions&) = delete;

  // Serves one data-plane connection until it closes, idles out or the server drains.
  boost::asio::awaitable<void> serve(Worker& w, boost::asio::ip::tcp::socket socket);
  // Serves one admin connection likewise.
  boost::asio::awaitable<void> serve_admin(Worker& w, boost::asio::ip::tcp::socket socket);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::host
