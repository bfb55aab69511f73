#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "core/pipeline/runtime.h"
#include "host/ferryd/admin_api.h"
#include "host/ferryd/server.h"
#include "host/ferryd/status_views.h"

namespace ferry::host {

// The HTTP side of ferryd: the data-plane workers (one io_context and one
// SO_REUSEPORT acceptor each), their connections and sessions, limits and
// drain, and the admin listener's sessions. The only part of ferryd that
// speaks HTTP through Beast; everything it answers itself comes from
// status_views, admin_api and route_handler.
class Listener {
 public:
  Listener(const pipeline::Runtime& runtime, const ServerOptions& options, const ServerState& state,
           const AdminApi& admin);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds the data plane (and the admin listener when on). On failure
  // returns false and why; nothing runs yet.
  bool bind(std::string* error);
  // Starts accepting: the admin thread, then one thread per worker.
  void run();
  // With state.draining set: stops accepting, closes idle connections, lets
  // in-flight requests finish (up to drain_timeout), then stops the threads.
  // Returns the requests still in flight when it gave up.
  size_t drain();
  // Stops every thread at once (no drain).
  void stop();

  std::string address() const;
  std::string admin_address() const;
  unsigned workers() const;
  size_t max_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::host
