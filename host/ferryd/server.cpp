// The frontend: the only translation unit of ferryd that includes Beast.
#include "host/ferryd/server.h"

#include <ferry/version.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cerrno>
#include <cstdio>
#include <optional>
#include <random>
#include <thread>
#include <unordered_set>

#include "core/http/upstream_client.h"
#include "core/json/doc.h"
#include "core/log/log.h"
#include "core/metrics/metrics.h"
#include "core/pipeline/engine.h"
#include "core/pipeline/request_checks.h"
#include "core/plugin/host_api.h"
#include "core/resilience/health_checker.h"
#include "core/util/headers.h"
#include "host/ferryd/frontend_writer.h"

namespace ferry::host {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using json::Value;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

std::string new_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   std::hash<std::thread::id>{}(std::this_thread::get_id())};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    uint64_t r = rng();
    for (int i = 0; i < 16; ++i) id[half * 16 + i] = kHex[(r >> (i * 4)) & 0xf];
  }
  return id;
}

// A client's id is kept if it is safe to echo into headers and logs.
bool acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':'))
      return false;
  return true;
}

struct Worker;

// What ClientWatch keeps of a connection between its requests.
struct ClientWatchState {
  tcp::socket* socket = nullptr;            // valid while ctx is set
  pipeline::RequestContext* ctx = nullptr;  // null when no request is watched
  asio::cancellation_signal stop;
};

// One accepted connection, registered with its worker so that a drain can
// close it while it waits for the next request, and so that the oldest idle
// ones can be shed when connections run short.
struct Connection {
  beast::tcp_stream stream;
  std::shared_ptr<ClientWatchState> watch;  // made on its first request
  bool busy = false;                        // a request is being handled; otherwise it waits for one
  std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();  // accepted, or last busy
  explicit Connection(tcp::socket s) : stream(std::move(s)) {}
};

struct Worker {
  asio::io_context io{1};
  std::optional<tcp::acceptor> acceptor;
  std::unique_ptr<http::UpstreamClient> upstream;
  std::unique_ptr<pipeline::Engine> engine;
  std::unordered_set<Connection*> connections;             // worker thread only
  std::unordered_set<pipeline::RequestContext*> requests;  // in flight; worker thread only
  std::atomic<size_t> open_connections{0};
  std::atomic<size_t> active_requests{0};
  std::thread thread;
};

// Keeps a connection in its worker's set and count for exactly its life,
// however its session ends.
class ConnectionEntry {
 public:
  ConnectionEntry(Worker& w, Connection& c) : w_(w), c_(c) {
    w_.connections.insert(&c_);
    w_.open_connections.fetch_add(1);
  }
  ~ConnectionEntry() {
    w_.connections.erase(&c_);
    w_.open_connections.fetch_sub(1);
  }
  ConnectionEntry(const ConnectionEntry&) = delete;
  ConnectionEntry& operator=(const ConnectionEntry&) = delete;

 private:
  Worker& w_;
  Connection& c_;
};

// Counts a request as active, and lets a drain that gives up cancel it.
class RequestEntry {
 public:
  RequestEntry(Worker& w, pipeline::RequestContext& ctx) : w_(w), ctx_(ctx) { w_.requests.insert(&ctx_); }
  ~RequestEntry() { w_.requests.erase(&ctx_); }
  RequestEntry(const RequestEntry&) = delete;
  RequestEntry& operator=(const RequestEntry&) = delete;

 private:
  Worker& w_;
  pipeline::RequestContext& ctx_;
};

class ActiveCount {
 public:
  explicit ActiveCount(std::atomic<size_t>& n) : n_(n) { n_.fetch_add(1); }
  ~ActiveCount() { n_.fetch_sub(1); }
  ActiveCount(const ActiveCount&) = delete;
  ActiveCount& operator=(const ActiveCount&) = delete;

 private:
  std::atomic<size_t>& n_;
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
  ClientWatch(std::shared_ptr<State>& state, tcp::socket& socket, pipeline::RequestContext& ctx)
      : state_(state) {
    if (!state_) state_ = std::make_shared<State>();
    state_->socket = &socket;
    state_->ctx = &ctx;
    arm(state_);
  }
  ~ClientWatch() {
    state_->ctx = nullptr;  // from here a late handler touches nothing
    state_->stop.emit(asio::cancellation_type::terminal);
  }
  ClientWatch(const ClientWatch&) = delete;
  ClientWatch& operator=(const ClientWatch&) = delete;

 private:
  static void arm(const std::shared_ptr<State>& st) {
    auto* ctx = st->ctx;
    st->socket->async_wait(
        tcp::socket::wait_read,
        asio::bind_cancellation_slot(st->stop.slot(), [st, ctx](const error_code& ec) {
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

// Runs the worker's io_context on its own thread. A handler that throws is a
// bug, but it must not take the daemon down: log it and keep serving.
// (Coroutines do not throw into run(): each co_spawn has a LogIfFailed.)
void run_on_thread(Worker& w, const char* what) {
  w.thread = std::thread([wp = &w, what] {
    for (;;) {
      try {
        wp->io.run();
        return;
      } catch (const std::exception& e) {
        log::get().error("{}: unhandled exception: {}", what, e.what());
      }
    }
  });
}

// Writes the engine's answer onto a Beast stream. An HTTP/1.0 client gets a
// stream as a body that ends when the connection closes (it knows no chunks).
class BeastWriter final : public HttpWriter {
 public:
  BeastWriter(beast::tcp_stream& stream, std::string_view request_id, bool keep_alive,
              std::chrono::milliseconds timeout, unsigned version = 11)
      : stream_(stream),
        request_id_(request_id),
        keep_alive_(keep_alive),
        timeout_(timeout),
        version_(version),
        chunked_(version >= 11) {}

  asio::awaitable<bool> send(int status, std::string_view content_type, std::string_view body,
                             const util::Headers& headers) override {
    started_ = true;
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), version_};
    res.set(bhttp::field::content_type, content_type);
    res.set("x-request-id", request_id_);
    for (const auto& h : headers) res.set(h.name, h.value);
    res.keep_alive(keep_alive_);
    res.body().assign(body);
    res.prepare_payload();
    stream_.expires_after(timeout_);
    auto [ec, n] = co_await bhttp::async_write(stream_, res, kNoThrow);
    ok_ = !ec;
    co_return ok_;
  }

  // The gateway's own JSON answers (health, models, errors outside a frontend).
  asio::awaitable<bool> send_json(int status, std::string_view body, const util::Headers& headers) {
    bool sent = co_await send(status, "application/json", body, headers);
    co_return sent;
  }

  // The head is written by hand: it is small and fixed, and it then leaves in
  // the same write as the first events.
  void begin_stream(std::string_view content_type, const util::Headers& headers) override {
    started_ = true;
    if (!chunked_) keep_alive_ = false;  // the end of the body is the end of the connection
    head_ = "HTTP/1.1 200 OK\r\nContent-Type: ";
    head_.append(content_type).append("\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    head_.append("x-request-id: ").append(request_id_).append("\r\n");
    for (const auto& h : headers) head_.append(h.name).append(": ").append(h.value).append("\r\n");
    head_.append(keep_alive_ ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    head_.append(chunked_ ? "Transfer-Encoding: chunked\r\n\r\n" : "\r\n");
  }

  void queue(std::string_view bytes) override { events_.append(bytes); }

  void end_stream() override { ended_ = true; }

  asio::awaitable<bool> flush() override {
    if (!ok_) co_return false;
    // One write: head (first time), one HTTP chunk holding every queued event,
    // and the terminating chunk at the end.
    char size_line[24];
    bool framed = chunked_ && !events_.empty();
    int size_len = framed ? std::snprintf(size_line, sizeof size_line, "%zx\r\n", events_.size()) : 0;
    bool last = chunked_ && ended_;
    std::array<asio::const_buffer, 5> parts{
        asio::buffer(head_), asio::buffer(size_line, static_cast<size_t>(size_len)), asio::buffer(events_),
        asio::buffer("\r\n", framed ? 2 : 0), asio::buffer("0\r\n\r\n", last ? 5 : 0)};
    if (asio::buffer_size(parts) == 0) co_return true;
    stream_.expires_after(timeout_);
    auto [ec, n] = co_await asio::async_write(stream_, parts, kNoThrow);
    head_.clear();
    events_.clear();
    ended_ = false;
    ok_ = !ec;
    co_return ok_;
  }

  bool ok() const { return ok_; }
  // Whether any part of an answer went out (or was attempted).
  bool started() const { return started_; }
  bool keep_alive() const { return keep_alive_; }

 private:
  beast::tcp_stream& stream_;
  std::string_view request_id_;
  bool keep_alive_;
  std::chrono::milliseconds timeout_;
  unsigned version_;
  bool chunked_;
  std::string head_;
  std::string events_;
  bool ended_ = false;
  bool ok_ = true;
  bool started_ = false;
};

std::string fmt_ms(std::chrono::microseconds us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(us.count()) / 1000.0);
  return buf;
}

}  // namespace

struct Server::Impl {
  const pipeline::Runtime& runtime;
  ServerOptions options;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<Worker> admin;  // its own thread: operators get answers while workers are busy
  std::vector<std::unique_ptr<resilience::HealthChecker>> checkers;  // outlive the checker's coroutines
  std::unique_ptr<Worker> checker;  // active health checks, on their own thread too
  std::string admin_address;
  std::atomic<bool> draining{false};
  std::string address;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  int64_t started_unix = static_cast<int64_t>(std::time(nullptr));

  // Client bodies are parsed within [limits] (the options outlive every request).
  json::ParseLimits request_limits;
  size_t max_connections = 0;

  Impl(const pipeline::Runtime& rt, ServerOptions opts)
      : runtime(rt), options(std::move(opts)), request_limits(options.limits.request_json()) {}

  size_t open_connections() const {
    size_t n = 0;
    for (const auto& w : workers) n += w->open_connections.load(std::memory_order_relaxed);
    return n;
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
      asio::co_spawn(w.io, session(w, std::move(sock)), log::LogIfFailed{std::move(what)});
    }
  }

  // Reads requests off one connection and answers them, until it closes,
  // idles too long, or the server drains. A request's head must arrive within
  // header_timeout of its first byte (a new connection's first byte within
  // header_timeout too), its body within body_timeout.
  asio::awaitable<void> session(Worker& w, tcp::socket sock) {
    std::string peer;
    error_code pec;
    auto ep = sock.remote_endpoint(pec);
    if (!pec) peer = ep.address().to_string() + ":" + std::to_string(ep.port());
    Connection conn(std::move(sock));
    ConnectionEntry entry(w, conn);
    beast::flat_buffer buffer;
    bool first = true;
    for (;;) {
      conn.busy = false;
      conn.since = std::chrono::steady_clock::now();
      if (draining.load()) break;
      if (buffer.size() == 0) {
        conn.stream.expires_after(first ? options.header_timeout : options.idle_timeout);
        auto [ec, n] = co_await conn.stream.async_read_some(buffer.prepare(4096), kNoThrow);
        if (ec) break;
        buffer.commit(n);
      }
      first = false;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(options.limits.max_header_bytes);
      parser.body_limit(options.limits.max_body_bytes);
      conn.stream.expires_after(options.header_timeout);
      auto [hec, hn] = co_await bhttp::async_read_header(conn.stream, buffer, parser, kNoThrow);
      if (hec) {
        co_await refuse_request(conn, parser.get(), hec);
        break;
      }
      size_t fields = 0;
      for (auto it = parser.get().begin(); it != parser.get().end(); ++it) ++fields;
      if (fields > options.limits.max_header_count) {
        co_await refuse_request(conn, parser.get(), bhttp::error::header_limit);
        break;
      }
      if (!parser.is_done()) {
        // curl and others wait for this before they send a large body.
        if (util::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          conn.stream.expires_after(options.body_timeout);
          auto [cec, cn] = co_await asio::async_write(conn.stream, asio::buffer(kContinue), kNoThrow);
          if (cec) break;
        }
        conn.stream.expires_after(options.body_timeout);
        auto [bec, bn] = co_await bhttp::async_read(conn.stream, buffer, parser, kNoThrow);
        if (bec) {
          co_await refuse_request(conn, parser.get(), bec);
          break;
        }
      }
      conn.busy = true;
      auto& req = parser.get();
      std::string id =
          acceptable_request_id(req["x-request-id"]) ? std::string(req["x-request-id"]) : new_request_id();
      BeastWriter out(conn.stream, id, req.keep_alive() && !draining.load(), options.idle_timeout,
                      req.version());
      bool again = false;
      bool failed = false;
      std::string failure;
      {
        ActiveCount active(w.active_requests);
        try {
          again = co_await handle(w, conn, req, peer, id, out);
        } catch (const std::exception& e) {
          failed = true;
          failure = e.what();
        } catch (...) {
          failed = true;
          failure = "an exception that is not a std::exception";
        }
      }
      if (failed) {
        // A bug, but one request's: log it with its id, answer if nothing was
        // sent yet, and close this connection (its state is unknown).
        log::get().error("[{}] request failed inside the gateway: {}", id, failure);
        metrics::Registry::global().add("ferry_internal_errors_total", 1);
        if (!out.started())
          co_await out.send_json(500,
                                 pipeline::error_json("the request failed inside the gateway (request id " +
                                                          id + "; the log has the details)",
                                                      "server_error", "internal_error"),
                                 {});
        break;
      }
      if (!again || !out.keep_alive()) break;
    }
    error_code ignored;
    conn.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    conn.stream.socket().close(ignored);
  }

  // A request that could not be read whole: answered when there is something
  // useful to say (too large, malformed), closed quietly when the client went
  // away or was too slow.
  asio::awaitable<void> refuse_request(Connection& conn, const bhttp::request<bhttp::string_body>& req,
                                       const error_code& ec) {
    if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout || ec == asio::error::connection_reset || ec == asio::error::eof ||
        ec == asio::error::bad_descriptor)
      co_return;
    std::string id = new_request_id();
    BeastWriter out(conn.stream, id, false, options.idle_timeout);
    int status = 400;
    std::string body;
    if (ec == bhttp::error::body_limit) {
      status = 413;
      body = pipeline::error_json("request body is larger than the limit of " +
                                      std::to_string(options.limits.max_body_bytes) +
                                      " bytes ([limits] max_body_bytes)",
                                  "invalid_request_error", "request_too_large");
    } else if (ec == bhttp::error::header_limit) {
      status = 431;
      body = pipeline::error_json("request headers exceed the limit of " +
                                      std::to_string(options.limits.max_header_bytes) + " bytes or " +
                                      std::to_string(options.limits.max_header_count) +
                                      " fields ([limits] max_header_bytes, max_header_count)",
                                  "invalid_request_error", "request_headers_too_large");
    } else {
      body = pipeline::error_json("malformed HTTP request: " + ec.message(), "invalid_request_error",
                                  "bad_http");
    }
    co_await out.send_json(status, body, {});
    if (options.access_log)
      log::get().info("access request_id={} method={} path={} status={}", id,
                      json::printable(req.method_string(), 20), json::printable(req.target(), 200), status);
  }

  // Returns whether the connection may serve another request.
  asio::awaitable<bool> handle(Worker& w, Connection& conn, bhttp::request<bhttp::string_body>& req,
                               const std::string& peer, const std::string& id, BeastWriter& out) {
    auto received = std::chrono::steady_clock::now();
    bool keep_alive = out.keep_alive();
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    std::string_view method(req.method_string().data(), req.method_string().size());

    // The gateway's own endpoints; every client dialect is a frontend's route.
    if (path == "/health" || path == "/metrics") {
      if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
        co_await method_not_allowed(out, id, req, "GET");
        co_return keep_alive&& out.ok();
      }
      if (path == "/metrics") {
        co_await send_text(conn, id, keep_alive, metrics_text());
      } else {
        std::string body = health_json();
        co_await out.send_json(200, body, {});
      }
      co_return keep_alive&& out.ok();
    }

    pipeline::RequestContext ctx(w.io.get_executor(), id);
    for (const auto& f : req) ctx.client_headers.add(f.name_string(), f.value());
    auto match = runtime.routes().find(method, path, ctx.client_headers);
    if (!match.route) {
      if (!match.allowed.empty()) {
        co_await method_not_allowed(out, id, req, match.allowed.c_str());
        co_return keep_alive&& out.ok();
      }
      co_await out.send_json(404,
                             pipeline::error_json("no route for " + json::printable(method, 20) + " " +
                                                      json::printable(path, 200),
                                                  "invalid_request_error", "unknown_url"),
                             {});
      if (options.access_log)
        log::get().info("access request_id={} method={} path={} status=404", id, json::printable(method, 20),
                        json::printable(path, 200));
      co_return keep_alive&& out.ok();
    }

    RequestEntry in_flight(w, ctx);
    ctx.received_at = received;
    ctx.client_addr = peer;
    const pipeline::Frontend& frontend = *match.route->frontend;
    ctx.frontend = frontend.name;
    FrontendWriter writer(frontend, ctx, out);
    pipeline::Outcome o;
    {
      ClientWatch watch(conn.watch, conn.stream.socket(), ctx);
      o = co_await serve_route(w, req, path, target, frontend, match.route->index, ctx, writer);
    }
    auto latency =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - received);
    record(o, latency);
    if (options.access_log) {
      // Plugins' request tags (auth's key, user, team ...), quoted as JSON strings.
      std::string tags;
      for (const auto& [name, value] : ctx.tags)
        tags += " tag." + json::printable(name, 64) + "=" + json::dump(Value(value));
      log::get().info(
          "access request_id={} method={} path={} frontend={} status={} model={} pipeline={} provider={} "
          "tried={} attempts={} retries={} stream={} latency_ms={} ttfb_ms={} tokens_in={} "
          "tokens_out={}{}{}{}{}",
          id, json::printable(method, 20), json::printable(path, 200), frontend.name, o.status,
          ctx.model.empty() ? "-" : json::dump(Value(ctx.model)), o.pipeline.empty() ? "-" : o.pipeline,
          o.provider.empty() ? "-" : o.provider, o.tried.empty() ? "-" : o.tried, o.attempts, o.retries,
          o.stream, fmt_ms(latency), fmt_ms(o.ttfb), o.prompt_tokens, o.completion_tokens,
          o.usage_estimated ? " usage=estimated" : "",
          o.error.empty() ? "" : " error=", o.error.empty() ? "" : json::dump(Value(o.error)), tags);
    }
    co_return keep_alive&& out.ok() && o.status != 499;
  }

  // One request on a frontend's route: decoded into the canonical request,
  // then served by the route's operation, every answer encoded back.
  asio::awaitable<pipeline::Outcome> serve_route(Worker& w, bhttp::request<bhttp::string_body>& req,
                                                 std::string_view path, std::string_view target,
                                                 const pipeline::Frontend& frontend, size_t route,
                                                 pipeline::RequestContext& ctx, FrontendWriter& writer) {
    pipeline::Outcome o;
    const ferry_route& r = frontend.routes[route];
    std::string_view query =
        target.size() > path.size() ? target.substr(path.size() + 1) : std::string_view();
    std::string body = std::move(req.body());
    // A body is parsed once, within [limits], before the frontend reads it.
    bool has_body = !body.empty() || req.method() == bhttp::verb::post;
    ctx.request = has_body ? json::Doc::from_text(body, &request_limits) : json::Doc::from_text("{}");
    if (has_body && !ctx.request.value()) {
      auto refusal = pipeline::refuse_unparsable(ctx.request.parse_error());
      o.status = refusal.status;
      o.error = refusal.message;
      bool sent =
          co_await writer.send_error(refusal.status, "invalid_request_error", refusal.code, refusal.message);
      if (!sent) o.status = 499;
      co_return o;
    }
    auto fv = [](std::string_view s) { return ferry_view{s.data(), s.size()}; };
    std::string_view method(req.method_string().data(), req.method_string().size());
    ferry_inbound inbound{sizeof(ferry_inbound),
                          route,
                          fv(method),
                          fv(path),
                          fv(query),
                          plugin::handle(&ctx.client_headers),
                          fv(body)};
    plugin::FrontendOutput decoded;
    const auto& vt = frontend.plugin->vt();
    ferry_status st = vt.decode(frontend.plugin->instance(), plugin::handle(&ctx), &inbound,
                                plugin::handle(&ctx.request), plugin::handle(&decoded));
    ctx.request.clear_scratch();
    if (decoded.error_status) {
      o.status = decoded.error_status;
      o.error = decoded.error_message;
      bool sent =
          co_await writer.send_error(decoded.error_status, decoded.error_type, "", decoded.error_message);
      if (!sent) o.status = 499;
      co_return o;
    }
    if (st == FERRY_RESPOND) {
      o.status = decoded.has_body ? decoded.status : 200;
      bool sent = co_await writer.send_output(decoded);
      if (!sent) o.status = 499;
      co_return o;
    }
    if (st != FERRY_OK || !ctx.request.value()) {
      o.status = 500;
      o.error =
          "frontend '" + frontend.name + "' could not decode the request (status " + std::to_string(st) + ")";
      log::get().error("[{}] {}", ctx.request_id, o.error);
      bool sent = co_await writer.send_error(500, "server_error", "plugin_error", o.error);
      if (!sent) o.status = 499;
      co_return o;
    }
    if (r.operation == FERRY_OP_MODELS) {
      ctx.operation = pipeline::RequestContext::Operation::kModels;
      o.status = 200;
      std::string models = models_json(frontend);
      bool sent = co_await writer.send_json(200, models, {});
      if (!sent) o.status = 499;
      co_return o;
    }
    if (r.operation != FERRY_OP_CHAT && r.operation != FERRY_OP_EMBEDDINGS) {
      o.status = 500;
      o.error = "frontend '" + frontend.name + "' neither answered nor named an operation for " +
                std::string(method) + " " + std::string(path);
      log::get().error("[{}] {}", ctx.request_id, o.error);
      bool sent = co_await writer.send_error(500, "server_error", "plugin_error", o.error);
      if (!sent) o.status = 499;
      co_return o;
    }
    // A door that exposes some models only ([frontends.NAME] models).
    if (const Value* m = pipeline::member(*ctx.request.value(), "model");
        m && m->is_string() && !frontend.exposes(m->get_ref<const std::string&>())) {
      o.status = 404;
      o.error = "The model '" + json::printable(m->get_ref<const std::string&>(), 200) +
                "' does not exist or is not served through this frontend";
      bool sent = co_await writer.send_error(404, "invalid_request_error", "model_not_found", o.error);
      if (!sent) o.status = 499;
      co_return o;
    }
    if (r.operation == FERRY_OP_EMBEDDINGS)
      o = co_await w.engine->embeddings(ctx, writer);
    else
      o = co_await w.engine->chat_completions(ctx, writer);
    co_return o;
  }

  asio::awaitable<void> method_not_allowed(BeastWriter& out, const std::string& id,
                                           const bhttp::request<bhttp::string_body>& req,
                                           const char* allowed) {
    util::Headers h;
    h.set("allow", allowed);
    co_await out.send_json(405,
                           pipeline::error_json(json::printable(req.method_string(), 20) +
                                                    " is not allowed here; use " + allowed,
                                                "invalid_request_error", "method_not_allowed"),
                           h);
    if (options.access_log)
      log::get().info("access request_id={} method={} path={} status=405", id,
                      json::printable(req.method_string(), 20), json::printable(req.target(), 200));
  }

  asio::awaitable<void> send_text(Connection& conn, const std::string& id, bool keep_alive,
                                  std::string body) {
    bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4");
    res.set("x-request-id", id);
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    conn.stream.expires_after(options.idle_timeout);
    co_await bhttp::async_write(conn.stream, res, kNoThrow);
  }

  // ---------------------------------------------------------------- health checks

  // Probes one provider every interval (resilience::HealthChecker holds the
  // thresholds); a transition is announced as a runtime event.
  void start_health_checks(Worker& w, const pipeline::Provider& p) {
    const auto& hc = p.health_check;
    auto changed = [this, &p](bool healthy, const std::string& error) {
      std::string detail = healthy ? std::string("healthy") : "unhealthy: " + error;
      runtime.emit({FERRY_EVENT_HEALTH_CHANGED, p.name, {}, {}, {}, {}, detail});
    };
    checkers.push_back(std::make_unique<resilience::HealthChecker>(*p.health, hc.unhealthy_after,
                                                                   hc.healthy_after, changed));
    auto probe_once = [this, &w, &p] { return probe(w, p); };
    asio::co_spawn(w.io,
                   checkers.back()->run(probe_once, std::chrono::milliseconds(hc.interval_ms), draining),
                   log::LogIfFailed{"health checks of provider '" + p.name + "'"});
  }

  // One probe: empty if the provider answered 2xx in time, else what went wrong.
  asio::awaitable<std::string> probe(Worker& w, const pipeline::Provider& p) {
    plugin::UpstreamBuild build;
    build.request.method = "GET";
    ferry_status st = p.plugin->vt().build_probe(p.plugin->instance(), plugin::handle(&build));
    if (st != FERRY_OK || build.request.url.empty())
      co_return "its adapter could not build a probe (status " + std::to_string(st) + ")";
    http::UpstreamOptions limits = p.upstream;
    limits.read = std::chrono::milliseconds(p.health_check.timeout_ms);
    limits.connect = std::min(limits.connect, limits.read);
    auto sent = co_await w.upstream->send(build.request, limits);
    if (sent.error) co_return sent.error.message;
    std::string body;
    auto err = co_await sent.exchange->read_all(body, 1024 * 1024);
    if (err) co_return err.message;
    int status = sent.exchange->status();
    if (status < 200 || status > 299) co_return "probe answered HTTP " + std::to_string(status);
    co_return std::string();
  }

  static Value health_check_json(const pipeline::Provider& p) {
    if (!p.health_check.enabled) return "off";
    auto probes = p.health->probes();
    const char* state = probes.count == 0 ? "pending" : probes.failing ? "unhealthy" : "healthy";
    Value v = {{"state", state}, {"probes", probes.count}};
    if (!probes.last_error.empty()) v["last_error"] = probes.last_error;
    return v;
  }

  // ---------------------------------------------------------------- admin

  asio::awaitable<void> admin_accept(Worker& w) {
    for (;;) {
      auto [ec, sock] = co_await w.acceptor->async_accept(kNoThrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || !w.acceptor->is_open()) co_return;
        continue;
      }
      asio::co_spawn(w.io, admin_session(w, std::move(sock)), log::LogIfFailed{"admin connection"});
    }
  }

  asio::awaitable<void> admin_session(Worker& w, tcp::socket sock) {
    Connection conn(std::move(sock));
    ConnectionEntry entry(w, conn);
    beast::flat_buffer buffer;
    for (;;) {
      conn.busy = false;
      if (draining.load()) break;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(64 * 1024);
      conn.stream.expires_after(options.idle_timeout);
      auto [ec, n] = co_await bhttp::async_read(conn.stream, buffer, parser, kNoThrow);
      conn.busy = true;
      if (ec) break;
      auto& req = parser.get();
      std::string id = new_request_id();
      bool keep_alive = req.keep_alive() && !draining.load();
      BeastWriter out(conn.stream, id, keep_alive, options.idle_timeout);
      // No co_await inside ?: (g++ 12 coroutine bug, see README).
      std::pair<int, std::string> answer;
      bool to_plugin = req.target().starts_with("/admin/plugins/") && authorized(req);
      if (to_plugin)
        answer = co_await admin_plugin(w, req);
      else
        answer = admin_route(req);
      auto& [status, body] = answer;
      util::Headers headers;
      if (status == 401) headers.set("www-authenticate", "Bearer");
      co_await out.send_json(status, body, headers);
      if (options.access_log)
        log::get().info("admin request_id={} method={} path={} status={}", id,
                        json::printable(req.method_string(), 20), json::printable(req.target(), 200), status);
      if (!keep_alive || !out.ok()) break;
    }
    error_code ignored;
    conn.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    conn.stream.socket().close(ignored);
  }

  bool authorized(const bhttp::request<bhttp::string_body>& req) const {
    if (options.admin_token.empty()) return true;
    std::string_view auth = req[bhttp::field::authorization];
    return auth.starts_with("Bearer ") && same_secret(auth.substr(7), options.admin_token);
  }

  // A plugin's answer arrives from any thread; the admin coroutine waits for
  // it on a timer that the answer cancels.
  class PluginReply final : public plugin::AdminReplySink, public std::enable_shared_from_this<PluginReply> {
   public:
    explicit PluginReply(asio::any_io_executor ex) : ex_(std::move(ex)), timer_(ex_) {}
    void reply(int status, std::string body) override {
      {
        std::lock_guard lock(mu_);
        if (done_) return;
        done_ = true;
        status_ = status;
        body_ = std::move(body);
      }
      asio::post(ex_, [self = shared_from_this()] { self->timer_.cancel(); });
    }
    asio::awaitable<std::optional<std::pair<int, std::string>>> wait(std::chrono::milliseconds timeout) {
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

   private:
    asio::any_io_executor ex_;
    asio::steady_timer timer_;
    std::mutex mu_;
    bool done_ = false;
    int status_ = 0;
    std::string body_;
  };

  // METHOD /admin/plugins/NAME/REST goes to middleware NAME's on_admin (1.2).
  asio::awaitable<std::pair<int, std::string>> admin_plugin(Worker& w,
                                                            const bhttp::request<bhttp::string_body>& req) {
    auto err = [](int status, const std::string& message, const char* code) {
      return std::pair<int, std::string>{status,
                                         pipeline::error_json(message, "invalid_request_error", code)};
    };
    std::string_view target = req.target();
    std::string_view query;
    if (auto q = target.find('?'); q != std::string_view::npos) {
      query = target.substr(q + 1);
      target = target.substr(0, q);
    }
    target.remove_prefix(std::string_view("/admin/plugins/").size());
    std::string_view name = target.substr(0, target.find('/'));
    std::string_view rest = target.substr(name.size());
    const pipeline::Middleware* mw = nullptr;
    for (const auto& m : runtime.middleware())
      if (m->name == name) mw = m.get();
    if (!mw || !mw->plugin->vt().on_admin) {
      std::string names;
      for (const auto& m : runtime.middleware())
        if (m->plugin->vt().on_admin) names += (names.empty() ? "" : ", ") + m->name;
      co_return err(404,
                    "no middleware '" + std::string(name) +
                        "' with an admin API (these have one: " + (names.empty() ? "none" : names) + ")",
                    "unknown_url");
    }
    auto sink = std::make_shared<PluginReply>(w.io.get_executor());
    auto* h = new plugin::AdminReplyHandle{sink};
    std::string method(req.method_string());
    auto fv = [](std::string_view v) { return ferry_view{v.data(), v.size()}; };
    ferry_admin_request ar{sizeof ar, fv(method), fv(rest), fv(query), fv(req.body())};
    ferry_status st = mw->plugin->vt().on_admin(mw->plugin->instance(), &ar, plugin::handle(h));
    if (st != FERRY_OK) {
      // The plugin refused without replying, so the handle is still ours.
      delete h;
      co_return err(
          500, "middleware '" + mw->name + "' failed its admin request (status " + std::to_string(st) + ")",
          "plugin_error");
    }
    auto answer = co_await sink->wait(std::chrono::seconds(10));
    if (!answer)
      co_return err(504, "middleware '" + mw->name + "' did not answer within 10 s", "plugin_timeout");
    co_return std::move(*answer);
  }

  // Compares in time independent of where the strings differ.
  static bool same_secret(std::string_view a, std::string_view b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (size_t i = 0; i < a.size(); ++i)
      diff |= static_cast<unsigned char>(a[i] ^ b[i % std::max<size_t>(1, b.size())]);
    return diff == 0;
  }

  std::pair<int, std::string> admin_route(const bhttp::request<bhttp::string_body>& req) {
    auto err = [](int status, const std::string& message, const char* code) {
      return std::pair<int, std::string>{status,
                                         pipeline::error_json(message, "invalid_request_error", code)};
    };
    if (!options.admin_token.empty()) {
      std::string_view auth(req[bhttp::field::authorization].data(), req[bhttp::field::authorization].size());
      if (!auth.starts_with("Bearer ") || !same_secret(auth.substr(7), options.admin_token))
        return err(401, "the admin API needs Authorization: Bearer <token>", "unauthorized");
    }
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    bool get = req.method() == bhttp::verb::get;
    bool post = req.method() == bhttp::verb::post;
    if (path == "/admin/providers" && get) return {200, admin_providers()};
    if (path == "/admin/pipelines" && get) return {200, admin_pipelines()};
    if (path == "/health" && get) return {200, health_json()};
    constexpr std::string_view kPrefix = "/admin/providers/";
    if (path.starts_with(kPrefix) && post) {
      std::string_view rest = path.substr(kPrefix.size());
      auto slash = rest.find('/');
      std::string_view name = rest.substr(0, slash);
      std::string_view verb = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
      const pipeline::Provider* p = nullptr;
      for (const auto& candidate : runtime.providers())
        if (candidate->name == name) p = candidate.get();
      if (!p) return err(404, "no provider named '" + std::string(name) + "'", "provider_not_found");
      if (verb != "drain" && verb != "enable")
        return err(404, "use POST /admin/providers/NAME/drain or /enable", "unknown_url");
      bool drain = verb == "drain";
      bool was = p->health->set_drained(drain);
      if (was != drain)
        log::lifecycle().info("event=provider_{} provider={} (admin API)", drain ? "drained" : "enabled",
                              p->name);
      return {200, json::dump(Value{{"name", p->name}, {"drained", drain}})};
    }
    return err(404, "no admin route for " + std::string(req.method_string()) + " " + std::string(path),
               "unknown_url");
  }

  std::string admin_providers() const {
    Value out = Value::array();
    for (const auto& p : runtime.providers()) {
      const auto& s = p->stats;
      out.push_back({{"name", p->name},
                     {"plugin", p->plugin->library().name()},
                     {"drained", p->health->drained()},
                     {"healthy", healthy(*p)},
                     {"in_flight", s.in_flight.load()},
                     {"attempts", s.attempts.load()},
                     {"failures", s.failures.load()},
                     {"error_rate", s.error_rate_ppm.load() / 1e6},
                     {"latency_p50_ms", s.latency.quantile(0.5) / 1000.0},
                     {"latency_p95_ms", s.latency.quantile(0.95) / 1000.0},
                     {"ttfb_ewma_ms", s.ttfb_ewma_us.load() / 1000.0},
                     {"health_check", health_check_json(*p)},
                     {"models", models(*p)}});
    }
    return json::dump(Value{{"providers", std::move(out)}});
  }

  std::string admin_pipelines() const {
    Value out = Value::array();
    for (const auto& pl : runtime.pipelines()) {
      Value providers = Value::array();
      for (const auto* p : pl->providers) providers.push_back(p->name);
      Value middleware = Value::array();
      for (const auto* m : pl->middleware) middleware.push_back(m->name);
      Value on_error = Value::object();
      for (size_t i = 0; i < resilience::kErrorClasses; ++i) {
        auto cls = static_cast<resilience::ErrorClass>(i);
        on_error[resilience::name(cls)] = resilience::name(pl->policy.action(cls));
      }
      const auto& pol = pl->policy;
      out.push_back({{"name", pl->name},
                     {"models", pl->models},
                     {"providers", std::move(providers)},
                     {"router", pl->router_name},
                     {"middleware", std::move(middleware)},
                     {"retry",
                      {{"max_retries", pol.max_retries},
                       {"backoff_base_ms", pol.backoff_base.count()},
                       {"backoff_max_ms", pol.backoff_max.count()},
                       {"max_retry_after_ms", pol.max_retry_after.count()},
                       {"deadline_ms", pol.deadline.count()}}},
                     {"on_error", std::move(on_error)}});
    }
    return json::dump(Value{{"pipelines", std::move(out)}});
  }

  void record(const pipeline::Outcome& o, std::chrono::microseconds latency) {
    auto& m = metrics::Registry::global();
    std::string labels = "{pipeline=\"" + (o.pipeline.empty() ? std::string("-") : o.pipeline) +
                         "\",status=\"" + std::to_string(o.status) + "\"}";
    m.add("ferry_requests_total" + labels, 1);
    m.observe("ferry_request_duration_seconds{pipeline=\"" + o.pipeline + "\"}", latency.count() / 1e6);
    if (o.prompt_tokens > 0)
      m.add("ferry_tokens_total{direction=\"in\"}", static_cast<double>(o.prompt_tokens));
    if (o.completion_tokens > 0)
      m.add("ferry_tokens_total{direction=\"out\"}", static_cast<double>(o.completion_tokens));
  }

  // The models a frontend exposes, as an OpenAI model list (its encoder
  // turns it into its dialect's).
  std::string models_json(const pipeline::Frontend& frontend) const {
    Value data = Value::array();
    for (const auto& p : runtime.pipelines())
      for (const auto& m : p->models)
        // A pattern is not a model name.
        if (m.find_first_of("*?[") == std::string::npos && frontend.exposes(m))
          data.push_back(
              {{"id", m}, {"object", "model"}, {"created", started_unix}, {"owned_by", "ferry:" + p->name}});
    return json::dump(Value{{"object", "list"}, {"data", std::move(data)}});
  }

  // Healthy: no model of the provider has an open circuit.
  static bool healthy(const pipeline::Provider& p) {
    if (p.health->probe_failing()) return false;
    for (const auto& [model, m] : p.models->all())
      if (m->breaker.state() != resilience::Breaker::State::kClosed) return false;
    return true;
  }
  static Value models(const pipeline::Provider& p) {
    Value out = Value::object();
    for (const auto& [model, m] : p.models->all())
      out[model] = {{"state", resilience::Breaker::name(m->breaker.state())},
                    {"error_rate", m->breaker.error_rate()},
                    {"latency_ewma_ms", m->latency_ewma_us.load() / 1000.0},
                    {"ttfb_ewma_ms", m->ttfb_ewma_us.load() / 1000.0}};
    return out;
  }

  static Value state_json() {
    const state::Store* store = plugin::state_store();
    if (!store) return nullptr;
    return {{"backend", store->backend()}, {"available", store->available()}};
  }

  std::string health_json() const {
    Value providers = Value::array();
    for (const auto& p : runtime.providers()) {
      const auto& s = p->stats;
      providers.push_back({{"name", p->name},
                           {"plugin", p->plugin->library().name()},
                           {"healthy", healthy(*p)},
                           {"models", models(*p)},
                           {"in_flight", s.in_flight.load()},
                           {"attempts", s.attempts.load()},
                           {"failures", s.failures.load()},
                           {"error_rate", s.error_rate_ppm.load() / 1e6},
                           {"latency_ewma_ms", s.latency_ewma_us.load() / 1000.0},
                           {"ttfb_ewma_ms", s.ttfb_ewma_us.load() / 1000.0}});
    }
    Value pipelines = Value::array();
    for (const auto& p : runtime.pipelines()) pipelines.push_back({{"name", p->name}, {"models", p->models}});
    auto uptime =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started);
    return json::dump(Value{{"status", draining.load() ? "draining" : "ok"},
                            {"version", FERRY_SDK_VERSION_STRING},
                            {"abi", std::to_string(FERRY_ABI_MAJOR) + "." + std::to_string(FERRY_ABI_MINOR)},
                            {"uptime_s", uptime.count()},
                            {"providers", std::move(providers)},
                            {"pipelines", std::move(pipelines)},
                            {"state", state_json()}});
  }

  std::string metrics_text() const {
    auto& m = metrics::Registry::global();
    size_t conns = 0;
    size_t active = 0;
    for (const auto& w : workers) {
      conns += w->open_connections.load();
      active += w->active_requests.load();
    }
    m.set("ferry_open_connections", static_cast<double>(conns));
    m.set("ferry_active_requests", static_cast<double>(active));
    uint64_t opened = 0;
    uint64_t reused = 0;
    for (const auto& w : workers) {
      opened += w->upstream->stats().connections_opened.load(std::memory_order_relaxed);
      reused += w->upstream->stats().connections_reused.load(std::memory_order_relaxed);
    }
    m.set("ferry_upstream_connections_opened", static_cast<double>(opened));
    m.set("ferry_upstream_connections_reused", static_cast<double>(reused));
    for (const auto& p : runtime.providers())
      m.set("ferry_provider_in_flight{provider=\"" + p->name + "\"}", p->stats.in_flight.load());
    return m.render();
  }
};

Server::Server(const pipeline::Runtime& runtime, ServerOptions options)
    : impl_(std::make_unique<Impl>(runtime, std::move(options))) {}

Server::~Server() {
  for (auto& w : impl_->workers) {
    w->io.stop();
    if (w->thread.joinable()) w->thread.join();
  }
  for (auto* extra : {impl_->admin.get(), impl_->checker.get()}) {
    if (!extra) continue;
    extra->io.stop();
    if (extra->thread.joinable()) extra->thread.join();
  }
}

namespace {
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

bool Server::start(std::string* error) {
  auto& im = *impl_;
  im.max_connections =
      im.options.limits.max_connections ? im.options.limits.max_connections : default_max_connections();
  unsigned n = im.options.threads ? im.options.threads : std::max(1u, std::thread::hardware_concurrency());
  error_code ec;
  auto addr = asio::ip::make_address(im.options.host, ec);
  if (ec) {
    *error = "cannot listen on '" + im.options.host + "': not an IP address";
    return false;
  }
  uint16_t port = im.options.port;
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
      *error = "cannot listen on " + im.options.host + ":" + std::to_string(port) + ": " + ec.message();
      return false;
    }
  }
  for (unsigned i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    tcp::endpoint ep(addr, port);
    w->acceptor.emplace(w->io);
    w->acceptor->open(ep.protocol(), ec);
    if (!ec) w->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      // Every worker accepts on its own socket; the kernel spreads connections.
      int one = 1;
      if (::setsockopt(w->acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        ec = error_code(errno, boost::system::system_category());
    }
    if (!ec) w->acceptor->bind(ep, ec);
    if (!ec) w->acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      *error = "cannot listen on " + im.options.host + ":" + std::to_string(port) + ": " + ec.message();
      return false;
    }
    port = w->acceptor->local_endpoint().port();
    w->upstream = http::UpstreamClient::create(w->io.get_executor());
    w->engine = std::make_unique<pipeline::Engine>(im.runtime, *w->upstream);
    im.workers.push_back(std::move(w));
  }
  std::string host = addr.is_v6() ? "[" + im.options.host + "]" : im.options.host;
  im.address = host + ":" + std::to_string(port);

  if (im.options.admin) {
    auto admin_addr = asio::ip::make_address(im.options.admin_host, ec);
    if (ec) {
      *error = "cannot listen on admin address '" + im.options.admin_host + "': not an IP address";
      return false;
    }
    auto w = std::make_unique<Worker>();
    tcp::endpoint ep(admin_addr, im.options.admin_port);
    w->acceptor.emplace(w->io);
    w->acceptor->open(ep.protocol(), ec);
    if (!ec) w->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) w->acceptor->bind(ep, ec);
    if (!ec) w->acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      *error = "cannot listen on admin address " + im.options.admin_host + ":" +
               std::to_string(im.options.admin_port) + ": " + ec.message();
      return false;
    }
    std::string ahost = admin_addr.is_v6() ? "[" + im.options.admin_host + "]" : im.options.admin_host;
    im.admin_address = ahost + ":" + std::to_string(w->acceptor->local_endpoint().port());
    im.admin = std::move(w);
  }
  bool any_checks = false;
  for (const auto& p : im.runtime.providers()) any_checks = any_checks || p->health_check.enabled;
  if (any_checks) {
    im.checker = std::make_unique<Worker>();
    im.checker->upstream = http::UpstreamClient::create(im.checker->io.get_executor());
    for (const auto& p : im.runtime.providers())
      if (p->health_check.enabled) im.start_health_checks(*im.checker, *p);
    run_on_thread(*im.checker, "health checks");
  }
  if (im.admin) {
    asio::co_spawn(im.admin->io, im.admin_accept(*im.admin), log::LogIfFailed{"admin listener"});
    run_on_thread(*im.admin, "admin");
  }
  for (auto& w : im.workers) {
    asio::co_spawn(w->io, im.accept_loop(*w), log::LogIfFailed{"listener"});
    run_on_thread(*w, "worker");
  }
  return true;
}

std::string Server::address() const { return impl_->address; }
std::string Server::admin_address() const { return impl_->admin_address; }
unsigned Server::workers() const { return static_cast<unsigned>(impl_->workers.size()); }
size_t Server::max_connections() const { return impl_->max_connections; }

size_t Server::drain() {
  auto& im = *impl_;
  im.draining.store(true);
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
  for (auto& w : im.workers) w->io.stop();
  for (auto& w : im.workers)
    if (w->thread.joinable()) w->thread.join();
  for (auto* extra : {im.admin.get(), im.checker.get()}) {
    if (!extra) continue;
    extra->io.stop();
    if (extra->thread.joinable()) extra->thread.join();
  }
  return active;
}

}  // namespace ferry::host
