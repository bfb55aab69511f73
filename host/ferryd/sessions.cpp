// The only translation unit of ferryd that includes Beast's HTTP templates
// (through beast_writer.h): the data-plane and admin sessions both live here.
#include "host/ferryd/sessions.h"

#include <boost/beast/core/flat_buffer.hpp>

#include "core/json/parse.h"
#include "core/log/log.h"
#include "core/metrics/metrics.h"
#include "core/util/headers.h"
#include "host/ferryd/access_log.h"
#include "host/ferryd/beast_writer.h"
#include "host/ferryd/client_watch.h"
#include "host/ferryd/connection.h"
#include "host/ferryd/frontend_writer.h"
#include "host/ferryd/request_id.h"
#include "host/ferryd/route_handler.h"

namespace ferry::host {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Request = bhttp::request<bhttp::string_body>;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

void close_connection(Connection& conn) {
  error_code ignored;
  conn.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  conn.stream.socket().close(ignored);
}

}  // namespace

struct HttpSessions::Impl {
  const pipeline::Runtime& runtime;
  const ServerOptions& options;
  const ServerState& state;
  const AdminApi& admin_api;
  std::function<Traffic()> traffic;
  AccessLog access_log;
  // Client bodies are parsed within [limits] (the options outlive every request).
  json::ParseLimits request_limits;
  RouteHandler routes;

  Impl(const pipeline::Runtime& rt, const ServerOptions& opts, const ServerState& st, const AdminApi& api,
       std::function<Traffic()> counts)
      : runtime(rt),
        options(opts),
        state(st),
        admin_api(api),
        traffic(std::move(counts)),
        access_log(opts.access_log),
        request_limits(opts.limits.request_json()),
        routes(rt, request_limits, st.started_unix) {}

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
      if (state.draining.load()) break;
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
        error_code too_many = bhttp::error::header_limit;
        co_await refuse_request(conn, parser.get(), too_many);
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
      BeastWriter out(conn.stream, id, req.keep_alive() && !state.draining.load(), options.idle_timeout,
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
        if (!out.started()) {
          std::string body = pipeline::error_json(
              "the request failed inside the gateway (request id " + id + "; the log has the details)",
              "server_error", "internal_error");
          util::Headers none;
          co_await out.send_json(500, body, none);
        }
        break;
      }
      if (!again || !out.keep_alive()) break;
    }
    close_connection(conn);
  }

  // A request that could not be read whole: answered when there is something
  // useful to say (too large, malformed), closed quietly when the client went
  // away or was too slow.
  asio::awaitable<void> refuse_request(Connection& conn, const Request& req, const error_code& ec) {
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
    util::Headers none;
    co_await out.send_json(status, body, none);
    access_log.refused(id, sv(req.method_string()), sv(req.target()), status);
  }

  // Returns whether the connection may serve another request.
  asio::awaitable<bool> handle(Worker& w, Connection& conn, Request& req, const std::string& peer,
                               const std::string& id, BeastWriter& out) {
    auto received = std::chrono::steady_clock::now();
    bool keep_alive = out.keep_alive();
    std::string_view target = sv(req.target());
    std::string_view path = target.substr(0, target.find('?'));
    std::string_view method = sv(req.method_string());
    util::Headers none;

    // The gateway's own endpoints; every client dialect is a frontend's route.
    if (path == "/health" || path == "/metrics") {
      if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
        co_await method_not_allowed(out, id, req, "GET");
        co_return keep_alive&& out.ok();
      }
      if (path == "/metrics") {
        std::string text = metrics_text(runtime, traffic());
        co_await send_text(conn, id, keep_alive, std::move(text));
      } else {
        std::string body = health_json(runtime, state);
        co_await out.send_json(200, body, none);
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
      std::string body = pipeline::error_json(
          "no route for " + json::printable(method, 20) + " " + json::printable(path, 200),
          "invalid_request_error", "unknown_url");
      co_await out.send_json(404, body, none);
      access_log.refused(id, method, path, 404);
      co_return keep_alive&& out.ok();
    }

    RequestEntry in_flight(w, ctx);
    ctx.received_at = received;
    ctx.client_addr = peer;
    const pipeline::Frontend& frontend = *match.route->frontend;
    ctx.frontend = frontend.name;
    FrontendWriter writer(frontend, ctx, out);
    RouteRequest route{method, path, target, std::move(req.body()), req.method() == bhttp::verb::post};
    pipeline::Outcome o;
    {
      ClientWatch watch(conn.watch, conn.stream.socket(), ctx);
      o = co_await routes.serve(*w.engine, route, frontend, match.route->index, ctx, writer);
    }
    auto latency =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - received);
    access_log.served(ctx, method, path, frontend.name, o, latency);
    co_return keep_alive&& out.ok() && o.status != 499;
  }

  asio::awaitable<void> method_not_allowed(BeastWriter& out, const std::string& id, const Request& req,
                                           const char* allowed) {
    util::Headers h;
    h.set("allow", allowed);
    std::string body = pipeline::error_json(
        json::printable(req.method_string(), 20) + " is not allowed here; use " + allowed,
        "invalid_request_error", "method_not_allowed");
    co_await out.send_json(405, body, h);
    access_log.refused(id, sv(req.method_string()), sv(req.target()), 405);
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

  // The admin listener's connections: the same HTTP reading, a smaller body
  // limit, no request id from the client; AdminApi answers.
  asio::awaitable<void> admin_session(Worker& w, tcp::socket sock) {
    Connection conn(std::move(sock));
    ConnectionEntry entry(w, conn);
    beast::flat_buffer buffer;
    for (;;) {
      conn.busy = false;
      if (state.draining.load()) break;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(64 * 1024);
      conn.stream.expires_after(options.idle_timeout);
      auto [ec, n] = co_await bhttp::async_read(conn.stream, buffer, parser, kNoThrow);
      conn.busy = true;
      if (ec) break;
      auto& req = parser.get();
      std::string id = new_request_id();
      bool keep_alive = req.keep_alive() && !state.draining.load();
      BeastWriter out(conn.stream, id, keep_alive, options.idle_timeout);
      AdminRequest ar{sv(req.method_string()), sv(req.target()), sv(req[bhttp::field::authorization]),
                      sv(req.body())};
      asio::any_io_executor executor = w.io.get_executor();
      std::pair<int, std::string> answer = co_await admin_api.handle(ar, executor);
      auto& [status, body] = answer;
      util::Headers headers;
      if (status == 401) headers.set("www-authenticate", "Bearer");
      co_await out.send_json(status, body, headers);
      access_log.admin(id, ar.method, ar.target, status);
      if (!keep_alive || !out.ok()) break;
    }
    close_connection(conn);
  }
};

HttpSessions::HttpSessions(const pipeline::Runtime& runtime, const ServerOptions& options,
                           const ServerState& state, const AdminApi& admin, std::function<Traffic()> traffic)
    : impl_(std::make_unique<Impl>(runtime, options, state, admin, std::move(traffic))) {}

HttpSessions::~HttpSessions() = default;

asio::awaitable<void> HttpSessions::serve(Worker& w, tcp::socket socket) {
  co_await impl_->session(w, std::move(socket));
}

asio::awaitable<void> HttpSessions::serve_admin(Worker& w, tcp::socket socket) {
  co_await impl_->admin_session(w, std::move(socket));
}

}  // namespace ferry::host
