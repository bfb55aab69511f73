#include "host/ferryd/server.h"

#include "host/ferryd/admin_api.h"
#include "host/ferryd/health_checks.h"
#include "host/ferryd/listener.h"
#include "host/ferryd/status_views.h"

namespace ferry::host {

// The parts, each with one job: the listener (connections, sessions, drain),
// the admin API, the health checks. Declared in the order they depend on one
// another, so that each is destroyed before what it refers to.
struct Server::Impl {
  ServerOptions options;
  ServerState state;
  AdminApi admin;
  HealthChecks health;
  Listener listener;

  Impl(const pipeline::Runtime& runtime, ServerOptions opts)
      : options(std::move(opts)),
        admin(runtime, state, options.admin_token),
        health(runtime, state.draining),
        listener(runtime, options, state, admin) {}
};

Server::Server(const pipeline::Runtime& runtime, ServerOptions options)
    : impl_(std::make_unique<Impl>(runtime, std::move(options))) {}

Server::~Server() {
  impl_->listener.stop();
  impl_->health.stop();
}

bool Server::start(std::string* error) {
  if (!impl_->listener.bind(error)) return false;
  impl_->health.start();
  impl_->listener.run();
  return true;
}

std::string Server::address() const { return impl_->listener.address(); }
std::string Server::admin_address() const { return impl_->listener.admin_address(); }
unsigned Server::workers() const { return impl_->listener.workers(); }
size_t Server::max_connections() const { return impl_->listener.max_connections(); }

size_t Server::drain() {
  impl_->state.draining.store(true);
  size_t active = impl_->listener.drain();
  impl_->health.stop();
  return active;
}

}  // namespace ferry::host
