#include "host/ferryd/listener.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <chrono>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log/log.h"
#include "core/metrics/metrics.h"
#include "host/ferryd/connection.h"
#include "host/ferryd/sessions.h"
#include "host/ferryd/worker.h"

namespace ferry::host {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// Connections the data plane may hold when [limits] does not say: half the
// file descriptors, less a reserve (admin listener, logs, state, plugins),
// since a client connection in flight also holds an upstream socket.
size_t default_max_connections() {
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0 || nofile.rlim_cur == RLIM_INFINITY) return 100'000;
  constexpr rlim_t kReserve = 64;
  return nofile.rlim_cur > 2 * kReserve ? static_cast<size_t>((nofile.rlim_cur - kReserve) / 2) : 16;
}

}  // namespace

struct Listener::Impl {
  const pipeline::Runtime& runtime;
  const ServerOptions& options;
  const ServerState& state;
  HttpSessions sessions;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<Worker> admin;  // its own thread: operators get answers while workers are busy
  std::string address;
  std::string admin_address;
  size_t max_connections = 0;

  Impl(const pipeline::Runtime& rt, const ServerOptions& opts, const ServerState& st, const AdminApi& api)
      : runtime(rt), options(opts), state(st), sessions(rt, opts, st, api, [this] { return traffic(); }) {}
  size_t open_connections() const {
    size_t n = 0;
    for (const auto& w : workers) n += w->open_connections.load(std::memory_order_relaxed);
    return n;
  }

  Traffic traffic() const {
    Traffic t;
    for (const auto& w : workers) {
      t.open_connections += w->open_connections.load();
      t.active_requests += w->active_requests.load();
      t.upstream_connections_opened +=
          w->upstream->stats().connections_opened.load(std::memory_order_relaxed);
      t.upstream_connections_reused +=
          w->upstream->stats().connections_reused.load(std::memory_order_relaxed);
    }
    return t;
  }

  // At the connection limit: close this worker's connection that has waited
  // longest without a request in progress. False if every one is busy.
  static bool shed_oldest_idle(Worker& w) {
    Connection* oldest = nullptr;
    for (Connection* c : w.connections)
      if (!c->busy && (!oldest || c->since < oldest->since)) oldest = c;
    if (!oldest) return false;
    error_code ignored;
    // Closing frees the descriptor now; its session wakes with an error and ends.
    oldest->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    oldest->stream.socket().close(ignored);
    metrics::Registry::global().add("ferry_connections_shed_total", 1);
    return true;
  }

  // Refuses a connection there is no room for, without holding it: the
  // socket's send buffer is empty, so the short answer leaves at once.
  static void refuse(tcp::socket& sock) {
    static constexpr std::string_view kBusy =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: "
        "close\r\nContent-Length: 124\r\n\r\n"
        "{\"error\":{\"message\":\"ferryd is at its connection limit; retry "
        "shortly\",\"type\":\"server_error\","
        "\"code\":\"too_many_connections\"}}";
    static_assert(kBusy.size() - kBusy.find("\r\n\r\n") - 4 == 124);
    [[maybe_unused]] ssize_t n =
        ::send(sock.native_handle(), kBusy.data(), kBusy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    error_code ignored;
    sock.close(ignored);
    metrics::Registry::global().add("ferry_connections_refused_total", 1);
  }

  asio::awaitable<void> accept_loop(Worker& w) {
    for (;;) {
      auto [ec, sock] = co_await w.acceptor->async_accept(kNoThrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || !w.acceptor->is_open()) co_return;
        // EMFILE and friends: make room, then back off briefly instead of spinning.
        log::get().warn("accept failed: {}", ec.message());
        shed_oldest_idle(w);
        asio::steady_timer t(w.io, std::chrono::milliseconds(50));
        co_await t.async_wait(kNoThrow);
        continue;
      }
      if (open_connections() >= max_connections && !shed_oldest_idle(w)) {
        refuse(sock);
        continue;
      }
      sock.set_option(tcp::no_delay(true));
      std::string what = "connection";
      error_code pec;
      if (auto ep = sock.remote_endpoint(pec); !pec)
        what += " from " + ep.address().to_string() + ":" + std::to_string(ep.port());
      asio::co_spawn(w.io, sessions.serve(w, std::move(sock)), log::LogIfFailed{std::move(what)});
    }
  }

  asio::awaitable<void> admin_accept(Worker& w) {
    for (;;) {
      auto [ec, sock] = co_await w.acceptor->async_accept(kNoThrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || !w.acceptor->is_open()) co_return;
        continue;
      }
      asio::co_spawn(w.io, sessions.serve_admin(w, std::move(sock)), log::LogIfFailed{"admin connection"});
    }
  }

  bool bind_data_plane(std::string* error) {
    max_connections =
        options.limits.max_connections ? options.limits.max_connections : default_max_connections();
    unsigned n = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
    error_code ec;
    auto addr = asio::ip::make_address(options.host, ec);
    if (ec) {
      *error = "cannot listen on '" + options.host + "': not an IP address";
      return false;
    }
    uint16_t port = options.port;
    if (port != 0) {
      // SO_REUSEPORT would let us share a port with another process of the same
      // user without a word. A plain bind first tells whether it is taken.
      asio::io_context probe_io;
      tcp::acceptor probe(probe_io);
      tcp::endpoint ep(addr, port);
      probe.open(ep.protocol(), ec);
      if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) probe.bind(ep, ec);
      if (ec) {
        *error = "cannot listen on " + options.host + ":" + std::to_string(port) + ": " + ec.message();
        return false;
      }
    }
    for (unsigned i = 0; i < n; ++i) {
      auto w = std::make_unique<Worker>();
      w->listen(tcp::endpoint(addr, port), true, ec);
      if (ec) {
        *error = "cannot listen on " + options.host + ":" + std::to_string(port) + ": " + ec.message();
        return false;
      }
      port = w->acceptor->local_endpoint().port();
      w->upstream = http::UpstreamClient::create(w->io.get_executor());
      w->engine = std::make_unique<pipeline::Engine>(runtime, *w->upstream);
      workers.push_back(std::move(w));
    }
    std::string host = addr.is_v6() ? "[" + options.host + "]" : options.host;
    address = host + ":" + std::to_string(port);
    return true;
  }

  bool bind_admin(std::string* error) {
    error_code ec;
    auto admin_addr = asio::ip::make_address(options.admin_host, ec);
    if (ec) {
      *error = "cannot listen on admin address '" + options.admin_host + "': not an IP address";
      return false;
    }
    auto w = std::make_unique<Worker>();
    w->listen(tcp::endpoint(admin_addr, options.admin_port), false, ec);
    if (ec) {
      *error = "cannot listen on admin address " + options.admin_host + ":" +
               std::to_string(options.admin_port) + ": " + ec.message();
      return false;
    }
    std::string ahost = admin_addr.is_v6() ? "[" + options.admin_host + "]" : options.admin_host;
    admin_address = ahost + ":" + std::to_string(w->acceptor->local_endpoint().port());
    admin = std::move(w);
    return true;
  }
};

Listener::Listener(const pipeline::Runtime& runtime, const ServerOptions& options, const ServerState& state,
                   const AdminApi& admin)
    : impl_(std::make_unique<Impl>(runtime, options, state, admin)) {}

Listener::~Listener() { stop(); }

bool Listener::bind(std::string* error) {
  if (!impl_->bind_data_plane(error)) return false;
  return !impl_->options.admin || impl_->bind_admin(error);
}

void Listener::run() {
  auto& im = *impl_;
  if (im.admin) {
    asio::co_spawn(im.admin->io, im.admin_accept(*im.admin), log::LogIfFailed{"admin listener"});
    im.admin->run_on_thread("admin");
  }
  for (auto& w : im.workers) {
    asio::co_spawn(w->io, im.accept_loop(*w), log::LogIfFailed{"listener"});
    w->run_on_thread("worker");
  }
}

size_t Listener::drain() {
  auto& im = *impl_;
  for (auto& w : im.workers) {
    asio::post(w->io, [wp = w.get()] {
      error_code ignored;
      wp->acceptor->close(ignored);
      wp->upstream->close_idle();
      // Connections waiting for a request are closed now; busy ones close
      // after their response (keep-alive is off while draining).
      for (Connection* c : wp->connections)
        if (!c->busy) c->stream.socket().cancel(ignored);
    });
  }
  auto wait_for_connections = [&](std::chrono::steady_clock::time_point until) {
    for (;;) {
      size_t left = im.open_connections();
      if (left == 0 || std::chrono::steady_clock::now() >= until) return left;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  size_t active = 0;
  if (wait_for_connections(std::chrono::steady_clock::now() + im.options.drain_timeout) != 0) {
    for (auto& w : im.workers) active += w->active_requests.load();
    // Out of time: cancel what is still in flight (each request then ends
    // with its plugins' on_complete) and close every connection, so that the
    // sessions unwind instead of being dropped mid-way.
    for (auto& w : im.workers) {
      asio::post(w->io, [wp = w.get()] {
        std::vector<pipeline::RequestContext*> requests(wp->requests.begin(), wp->requests.end());
        for (auto* ctx : requests) ctx->cancel("ferryd is shutting down: drain_timeout_ms passed");
        error_code ignored;
        for (Connection* c : wp->connections) c->stream.socket().cancel(ignored);
      });
    }
    wait_for_connections(std::chrono::steady_clock::now() + std::chrono::seconds(2));
  }
  stop();
  return active;
}

void Listener::stop() {
  // Every worker is told first, then each is waited for.
  for (auto& w : impl_->workers) w->io.stop();
  for (auto& w : impl_->workers) w->stop();
  if (impl_->admin) impl_->admin->stop();
}

std::string Listener::address() const { return impl_->address; }
std::string Listener::admin_address() const { return impl_->admin_address; }
unsigned Listener::workers() const { return static_cast<unsigned>(impl_->workers.size()); }
size_t Listener::max_connections() const { return impl_->max_connections; }

}  // namespace ferry::host
