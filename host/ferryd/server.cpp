// The frontend: the only translation unit of ferryd that includes Beast.
#include "host/ferryd/server.h"

#include <ferry/version.h>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
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
#include "core/plugin/host_api.h"

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

// One accepted connection, registered with its worker so that a drain can
// close it while it waits for the next request.
struct Connection {
  beast::tcp_stream stream;
  bool idle = true;
  explicit Connection(tcp::socket s) : stream(std::move(s)) {}
};

struct Worker {
  asio::io_context io{1};
  std::optional<tcp::acceptor> acceptor;
  std::unique_ptr<http::UpstreamClient> upstream;
  std::unique_ptr<pipeline::Engine> engine;
  std::unordered_set<Connection*> connections;  // worker thread only
  std::atomic<size_t> open_connections{0};
  std::atomic<size_t> active_requests{0};
  std::thread thread;
};

// Runs the worker's io_context on its own thread. A handler that throws is a
// bug, but it must not take the daemon down: log it and keep serving.
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

// Writes the engine's answer onto a Beast stream.
class BeastWriter final : public pipeline::ClientWriter {
 public:
  BeastWriter(beast::tcp_stream& stream, std::string_view request_id, bool keep_alive,
              std::chrono::milliseconds timeout)
      : stream_(stream), request_id_(request_id), keep_alive_(keep_alive), timeout_(timeout) {}

  asio::awaitable<bool> send_json(int status, std::string_view body, const util::Headers& headers) override {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
    res.set(bhttp::field::content_type, "application/json");
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

  // The head is written by hand: it is small and fixed, and it then leaves in
  // the same write as the first events.
  void begin_events(const util::Headers& headers) override {
    head_ =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: "
        "no\r\n";
    head_.append("x-request-id: ").append(request_id_).append("\r\n");
    for (const auto& h : headers) head_.append(h.name).append(": ").append(h.value).append("\r\n");
    head_.append(keep_alive_ ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    head_.append("Transfer-Encoding: chunked\r\n\r\n");
  }

  void queue_event(std::string_view data) override { events_.append("data: ").append(data).append("\n\n"); }

  void end_events() override { ended_ = true; }

  asio::awaitable<bool> flush() override {
    if (!ok_) co_return false;
    // One write: head (first time), one HTTP chunk holding every queued event,
    // and the terminating chunk at the end.
    char size_line[24];
    int size_len =
        events_.empty() ? 0 : std::snprintf(size_line, sizeof size_line, "%zx\r\n", events_.size());
    std::array<asio::const_buffer, 5> parts{
        asio::buffer(head_), asio::buffer(size_line, static_cast<size_t>(size_len)), asio::buffer(events_),
        asio::buffer(events_.empty() ? "" : "\r\n", events_.empty() ? 0 : 2),
        asio::buffer(ended_ ? "0\r\n\r\n" : "", ended_ ? 5 : 0)};
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

 private:
  beast::tcp_stream& stream_;
  std::string_view request_id_;
  bool keep_alive_;
  std::chrono::milliseconds timeout_;
  std::string head_;
  std::string events_;
  bool ended_ = false;
  bool ok_ = true;
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
  std::unique_ptr<Worker> admin;    // its own thread: operators get answers while workers are busy
  std::unique_ptr<Worker> checker;  // active health checks, on their own thread too
  std::string admin_address;
  std::atomic<bool> draining{false};
  std::string address;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  int64_t started_unix = static_cast<int64_t>(std::time(nullptr));

  Impl(const pipeline::Runtime& rt, ServerOptions opts) : runtime(rt), options(std::move(opts)) {}

  asio::awaitable<void> accept_loop(Worker& w) {
    for (;;) {
      auto [ec, sock] = co_await w.acceptor->async_accept(kNoThrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || !w.acceptor->is_open()) co_return;
        // EMFILE and friends: back off briefly instead of spinning.
        log::get().warn("accept failed: {}", ec.message());
        asio::steady_timer t(w.io, std::chrono::milliseconds(50));
        co_await t.async_wait(kNoThrow);
        continue;
      }
      sock.set_option(tcp::no_delay(true));
      asio::co_spawn(w.io, session(w, std::move(sock)), asio::detached);
    }
  }

  asio::awaitable<void> session(Worker& w, tcp::socket sock) {
    std::string peer;
    error_code pec;
    auto ep = sock.remote_endpoint(pec);
    if (!pec) peer = ep.address().to_string() + ":" + std::to_string(ep.port());
    Connection conn(std::move(sock));
    w.connections.insert(&conn);
    w.open_connections.fetch_add(1);
    beast::flat_buffer buffer;
    for (;;) {
      conn.idle = true;
      if (draining.load()) break;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(options.max_body_bytes);
      parser.header_limit(64 * 1024);
      conn.stream.expires_after(options.idle_timeout);
      auto [ec, n] = co_await bhttp::async_read(conn.stream, buffer, parser, kNoThrow);
      conn.idle = false;
      if (ec == bhttp::error::body_limit) {
        co_await too_large(conn, parser.get());
        break;
      }
      if (ec) {
        if (ec != bhttp::error::end_of_stream && ec != asio::error::operation_aborted &&
            ec != beast::error::timeout && ec != asio::error::connection_reset && ec != asio::error::eof)
          co_await bad_request(conn, ec);
        break;
      }
      w.active_requests.fetch_add(1);
      bool keep_alive = co_await handle(w, conn, parser.get(), peer);
      w.active_requests.fetch_sub(1);
      if (!keep_alive) break;
    }
    error_code ignored;
    conn.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    conn.stream.socket().close(ignored);
    w.connections.erase(&conn);
    w.open_connections.fetch_sub(1);
  }

  asio::awaitable<void> too_large(Connection& conn, const bhttp::request<bhttp::string_body>& req) {
    std::string id =
        acceptable_request_id(req["x-request-id"]) ? std::string(req["x-request-id"]) : new_request_id();
    BeastWriter out(conn.stream, id, false, options.idle_timeout);
    co_await out.send_json(413,
                           pipeline::error_json("request body is larger than the limit of " +
                                                    std::to_string(options.max_body_bytes) + " bytes",
                                                "invalid_request_error", "request_too_large"),
                           {});
    log::get().info("access request_id={} method={} path={} status=413", id, std::string(req.method_string()),
                    std::string(req.target()));
  }

  asio::awaitable<void> bad_request(Connection& conn, const error_code& ec) {
    std::string id = new_request_id();
    BeastWriter out(conn.stream, id, false, options.idle_timeout);
    co_await out.send_json(
        400,
        pipeline::error_json("malformed HTTP request: " + ec.message(), "invalid_request_error", "bad_http"),
        {});
  }

  // Returns whether the connection may serve another request.
  asio::awaitable<bool> handle(Worker& w, Connection& conn, bhttp::request<bhttp::string_body>& req,
                               const std::string& peer) {
    auto received = std::chrono::steady_clock::now();
    std::string id =
        acceptable_request_id(req["x-request-id"]) ? std::string(req["x-request-id"]) : new_request_id();
    bool keep_alive = req.keep_alive() && !draining.load();
    BeastWriter out(conn.stream, id, keep_alive, options.idle_timeout);
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    auto method = req.method();

    if (path == "/v1/chat/completions" || path == "/v1/embeddings") {
      if (method != bhttp::verb::post) {
        co_await method_not_allowed(out, id, req, "POST");
        co_return keep_alive&& out.ok();
      }
      pipeline::RequestContext ctx(w.io.get_executor(), id);
      ctx.received_at = received;
      ctx.client_addr = peer;
      for (const auto& f : req) ctx.client_headers.add(f.name_string(), f.value());
      ctx.request = json::Doc::from_text(std::move(req.body()));
      pipeline::Outcome o;
      if (path == "/v1/embeddings")
        o = co_await w.engine->embeddings(ctx, out);
      else
        o = co_await w.engine->chat_completions(ctx, out);
      auto latency =
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - received);
      record(o, latency);
      if (options.access_log) {
        // Plugins' request tags (auth's key, user, team ...), quoted as JSON strings.
        std::string tags;
        for (const auto& [name, value] : ctx.tags) tags += " tag." + name + "=" + Value(value).dump();
        log::get().info(
            "access request_id={} method=POST path={} status={} model={} pipeline={} provider={} tried={} "
            "attempts={} retries={} stream={} latency_ms={} ttfb_ms={} tokens_in={} tokens_out={}{}{}{}",
            id, path, o.status, ctx.model.empty() ? "-" : ctx.model, o.pipeline.empty() ? "-" : o.pipeline,
            o.provider.empty() ? "-" : o.provider, o.tried.empty() ? "-" : o.tried, o.attempts, o.retries,
            o.stream, fmt_ms(latency), fmt_ms(o.ttfb), o.prompt_tokens, o.completion_tokens,
            o.error.empty() ? "" : " error=", o.error.empty() ? "" : Value(o.error).dump(), tags);
      }
      co_return keep_alive&& out.ok() && o.status != 499;
    }

    int status = 200;
    if (path == "/v1/models" || path == "/health" || path == "/metrics") {
      if (method != bhttp::verb::get && method != bhttp::verb::head) {
        co_await method_not_allowed(out, id, req, "GET");
        co_return keep_alive&& out.ok();
      }
      if (path == "/metrics") {
        co_await send_text(conn, id, keep_alive, metrics_text());
      } else {
        // Bound to a local first: g++ 12 destroys a ?: temporary inside a
        // co_await expression twice.
        std::string body = path == "/health" ? health_json() : models_json();
        co_await out.send_json(200, body, {});
      }
    } else {
      status = 404;
      co_await out.send_json(
          404,
          pipeline::error_json("no route for " + std::string(req.method_string()) + " " + std::string(path),
                               "invalid_request_error", "unknown_url"),
          {});
    }
    if (options.access_log && path != "/health" && path != "/metrics")
      log::get().info("access request_id={} method={} path={} status={}", id,
                      std::string(req.method_string()), path, status);
    co_return keep_alive&& out.ok();
  }

  asio::awaitable<void> method_not_allowed(BeastWriter& out, const std::string& id,
                                           const bhttp::request<bhttp::string_body>& req,
                                           const char* allowed) {
    util::Headers h;
    h.set("allow", allowed);
    co_await out.send_json(
        405,
        pipeline::error_json(std::string(req.method_string()) + " is not allowed here; use " + allowed,
                             "invalid_request_error", "method_not_allowed"),
        h);
    if (options.access_log)
      log::get().info("access request_id={} method={} path={} status=405", id,
                      std::string(req.method_string()), std::string(req.target()));
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

  // Probes one provider every interval; enough failures in a row take it out
  // of routing (Provider::available()), enough successes put it back.
  asio::awaitable<void> health_loop(Worker& w, const pipeline::Provider& p) {
    const auto& hc = p.health_check;
    uint32_t failures = 0;
    uint32_t successes = 0;
    asio::steady_timer timer(w.io);
    while (!draining.load()) {
      std::string error = co_await probe(w, p);
      {
        std::lock_guard lock(p.probe_mu);
        p.probe_error = error;
      }
      p.probes.fetch_add(1);
      if (!error.empty()) {
        successes = 0;
        if (++failures >= hc.unhealthy_after && !p.probe_failing.exchange(true))
          runtime.emit({FERRY_EVENT_HEALTH_CHANGED, p.name, {}, {}, {}, {}, "unhealthy: " + error});
      } else {
        failures = 0;
        if (++successes >= hc.healthy_after && p.probe_failing.exchange(false))
          runtime.emit({FERRY_EVENT_HEALTH_CHANGED, p.name, {}, {}, {}, {}, "healthy"});
      }
      timer.expires_after(std::chrono::milliseconds(hc.interval_ms));
      co_await timer.async_wait(kNoThrow);
    }
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
    std::lock_guard lock(p.probe_mu);
    const char* state = p.probes.load() == 0 ? "pending" : p.probe_failing.load() ? "unhealthy" : "healthy";
    Value v = {{"state", state}, {"probes", p.probes.load()}};
    if (!p.probe_error.empty()) v["last_error"] = p.probe_error;
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
      asio::co_spawn(w.io, admin_session(w, std::move(sock)), asio::detached);
    }
  }

  asio::awaitable<void> admin_session(Worker& w, tcp::socket sock) {
    Connection conn(std::move(sock));
    w.connections.insert(&conn);
    beast::flat_buffer buffer;
    for (;;) {
      conn.idle = true;
      if (draining.load()) break;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(64 * 1024);
      conn.stream.expires_after(options.idle_timeout);
      auto [ec, n] = co_await bhttp::async_read(conn.stream, buffer, parser, kNoThrow);
      conn.idle = false;
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
                        std::string(req.method_string()), std::string(req.target()), status);
      if (!keep_alive || !out.ok()) break;
    }
    error_code ignored;
    conn.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    conn.stream.socket().close(ignored);
    w.connections.erase(&conn);
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
      bool was = p->drained.exchange(drain);
      if (was != drain)
        log::lifecycle().info("event=provider_{} provider={} (admin API)", drain ? "drained" : "enabled",
                              p->name);
      return {200, Value{{"name", p->name}, {"drained", drain}}.dump()};
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
                     {"drained", p->drained.load()},
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
    return Value{{"providers", std::move(out)}}.dump();
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
    return Value{{"pipelines", std::move(out)}}.dump();
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

  std::string models_json() const {
    Value data = Value::array();
    for (const auto& p : runtime.pipelines())
      for (const auto& m : p->models)
        if (m.find_first_of("*?[") == std::string::npos)  // a pattern is not a model name
          data.push_back(
              {{"id", m}, {"object", "model"}, {"created", started_unix}, {"owned_by", "ferry:" + p->name}});
    return Value{{"object", "list"}, {"data", std::move(data)}}.dump();
  }

  // Healthy: no model of the provider has an open circuit.
  static bool healthy(const pipeline::Provider& p) {
    if (p.probe_failing.load()) return false;
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
    return Value{{"status", draining.load() ? "draining" : "ok"},
                 {"version", FERRY_SDK_VERSION_STRING},
                 {"abi", std::to_string(FERRY_ABI_MAJOR) + "." + std::to_string(FERRY_ABI_MINOR)},
                 {"uptime_s", uptime.count()},
                 {"providers", std::move(providers)},
                 {"pipelines", std::move(pipelines)},
                 {"state", state_json()}}
        .dump();
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

bool Server::start(std::string* error) {
  auto& im = *impl_;
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
      if (p->health_check.enabled)
        asio::co_spawn(im.checker->io, im.health_loop(*im.checker, *p), asio::detached);
    run_on_thread(*im.checker, "health checks");
  }
  if (im.admin) {
    asio::co_spawn(im.admin->io, im.admin_accept(*im.admin), asio::detached);
    run_on_thread(*im.admin, "admin");
  }
  for (auto& w : im.workers) {
    asio::co_spawn(w->io, im.accept_loop(*w), asio::detached);
    run_on_thread(*w, "worker");
  }
  return true;
}

std::string Server::address() const { return impl_->address; }
std::string Server::admin_address() const { return impl_->admin_address; }
unsigned Server::workers() const { return static_cast<unsigned>(impl_->workers.size()); }

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
        if (c->idle) c->stream.socket().cancel(ignored);
    });
  }
  auto deadline = std::chrono::steady_clock::now() + im.options.drain_timeout;
  size_t left = 0;
  for (;;) {
    left = 0;
    for (auto& w : im.workers) left += w->open_connections.load();
    if (left == 0 || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  size_t active = 0;
  for (auto& w : im.workers) active += w->active_requests.load();
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
