// ferry-mock-upstream: a fake OpenAI / Anthropic upstream for ferryd's
// integration tests and benchmarks. See README.md for the endpoints and the
// fault-injection directives. This is the only translation unit that sees
// Beast; everything protocol-independent lives in mock_logic.cpp.

#include "mock_logic.h"

#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <linux/sockios.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace ferry::mock {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// The concrete executor instead of any_io_executor: each thread owns its
// io_context, so type erasure would buy nothing and cost on every operation.
using Executor = asio::io_context::executor_type;
template <class T = void>
using Task = asio::awaitable<T, Executor>;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Executor>;
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// Errors come back as values: peers vanishing is routine here, and an
// exception per closed connection would cost real throughput under load.
constexpr auto no_throw = asio::as_tuple(asio::use_awaitable_t<Executor>{});

constexpr std::size_t max_body_bytes = 8 * 1024 * 1024;
constexpr std::size_t max_header_bytes = 64 * 1024;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

struct Config {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  int threads = 2;
  Options options;
  bool verbose = false;
};

struct Context {
  Options options;
  bool verbose = false;
  SharedState state;
  std::atomic<std::uint64_t> next_id{1};
};

// What the connection loop should do once a request has been answered.
enum class After { keep_alive, close, gone };

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

Response make_response(const Request& req, unsigned status, std::string body,
                       std::string_view content_type = "application/json") {
  Response res;
  res.version(req.version() == 10 ? 10 : 11);
  res.result(status);
  // Beast has no reason phrase for codes like 529; an empty one is legal
  // but some clients print it, so give them something readable.
  if (http::int_to_status(status) == http::status::unknown) {
    res.reason(status == 529 ? "Overloaded" : "Mock Fault");
  }
  res.set(http::field::server, "ferry-mock-upstream");
  res.keep_alive(req.keep_alive());
  if (status == 204) return res;  // no Content-Length allowed on 204
  res.set(http::field::content_type, content_type);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Task<After> write_response(Socket& sock, Response& res) {
  auto [ec, n] = co_await http::async_write(sock, res, no_throw);
  if (ec) co_return After::gone;
  co_return res.keep_alive() ? After::keep_alive : After::close;
}

Task<After> send(Socket& sock, const Request& req, unsigned status, std::string body) {
  Response res = make_response(req, status, std::move(body));
  co_return co_await write_response(sock, res);
}

Task<> sleep_ms(Socket& sock, int ms) {
  Timer timer(sock.get_executor());
  timer.expires_after(std::chrono::milliseconds(ms));
  co_await timer.async_wait(no_throw);
}

// Reads and discards until the peer closes; this is how a "hung" upstream
// notices that nobody is waiting any more.
Task<> wait_for_peer_close(Socket& sock) {
  char scratch[1024];
  for (;;) {
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(scratch), no_throw);
    if (ec) co_return;
  }
}

// An RST discards whatever is still queued for sending, so wait (briefly)
// for the peer to have acknowledged everything we meant it to see.
Task<> wait_send_queue_drained(Socket& sock) {
  for (int i = 0; i < 200; ++i) {
    int queued = 0;
    if (::ioctl(sock.native_handle(), SIOCOUTQ, &queued) != 0 || queued <= 0) co_return;
    co_await sleep_ms(sock, 1);
  }
}

// SO_LINGER with a zero timeout makes close() send RST, so the client sees
// ECONNRESET rather than an orderly EOF.
void reset_connection(Socket& sock) {
  error_code ignored;
  sock.set_option(asio::socket_base::linger(true, 0), ignored);
  sock.close(ignored);
}

void append_frame(std::string& out, std::string_view event, bool chunked) {
  if (chunked) {
    char hex[16];
    auto [end, ec] = std::to_chars(hex, hex + sizeof hex, event.size(), 16);
    out.append(hex, end);
    out += "\r\n";
    out += event;
    out += "\r\n";
  } else {
    out += event;
  }
}

Task<bool> flush(Socket& sock, std::string& out) {
  if (out.empty()) co_return true;
  auto [ec, n] = co_await asio::async_write(sock, asio::buffer(out), no_throw);
  out.clear();
  co_return !ec;
}

Task<bool> write_all(Socket& sock, std::string_view bytes) {
  if (bytes.empty()) co_return true;
  auto [ec, n] = co_await asio::async_write(sock, asio::buffer(bytes.data(), bytes.size()), no_throw);
  co_return !ec;
}

// drip_ms: each byte waits `ms` (async, so other connections keep being
// served) and leaves in its own write; with `chunked` each byte is its own
// HTTP chunk, so the client's SSE parser really is fed one byte at a time.
Task<bool> drip(Socket& sock, std::string_view bytes, int ms, bool chunked) {
  Timer timer(sock.get_executor());
  std::string frame;
  for (char c : bytes) {
    timer.expires_after(std::chrono::milliseconds(ms));
    co_await timer.async_wait(no_throw);
    frame.clear();
    append_frame(frame, std::string_view{&c, 1}, chunked);
    if (!co_await write_all(sock, frame)) co_return false;
  }
  co_return true;
}

// The extra_response fault's unsolicited second response, framed so that a
// client reading it as its next response parses it without complaint.
std::string poisoned_http_response(ApiFormat format, std::string_view model) {
  std::string body = render_poisoned_response(format, model);
  std::string out =
      "HTTP/1.1 200 OK\r\nServer: ferry-mock-upstream\r\nContent-Type: application/json\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\n\r\n";
  out += body;
  return out;
}

// Writes the extra_response bytes that wait for `delay_ms` of idleness. A
// request the client sends meanwhile stays in the socket buffer and is read
// only afterwards, so the mock's own parsing is never mixed up with the junk.
Task<bool> send_delayed_extra(Socket& sock, std::string_view extra, int delay_ms) {
  if (extra.empty() || delay_ms <= 0) co_return true;
  co_await sleep_ms(sock, delay_ms);
  co_return co_await write_all(sock, extra);
}

// The echo_auth fault: the request's credentials, verbatim. Response headers
// are added only for credentials the request actually carried.
struct EchoAuth {
  std::string_view authorization;
  std::string_view api_key;

  template <class F>
  void for_each_header(F&& add) const {
    if (!authorization.empty()) add("x-echo-authorization", authorization);
    if (!api_key.empty()) add("x-echo-api-key", api_key);
  }
};

// The stream is framed by hand (header + chunk framing in one buffer) so that
// events produced back to back leave in a single write, while anything
// separated by a pacing delay is flushed before the timer starts.
Task<After> write_stream(Socket& sock, const Request& req, SseStream& stream, const Faults& faults,
                         int chunk_delay_ms, const EchoAuth* echo, std::string_view extra_response) {
  // HTTP/1.0 has no chunked encoding; fall back to a close-delimited body.
  bool chunked = req.version() >= 11;
  bool keep_alive = chunked && req.keep_alive();
  int drip_ms = faults.drip();

  std::string out;
  out.reserve(1024);
  out += chunked ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.0 200 OK\r\n";
  out += "Server: ferry-mock-upstream\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n";
  if (chunked) out += "Transfer-Encoding: chunked\r\n";
  if (echo) {
    echo->for_each_header([&](std::string_view name, std::string_view value) {
      out += name;
      out += ": ";
      out += value;
      out += "\r\n";
    });
  }
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";

  if (faults.is_hang()) {
    bool flushed = co_await flush(sock, out);
    if (flushed) co_await wait_for_peer_close(sock);
    co_return After::gone;
  }

  // Dripping frames each byte separately, so from here on `out` holds the
  // unframed SSE bytes; the head goes out at once.
  if (drip_ms > 0 && !(co_await flush(sock, out))) co_return After::gone;

  int reset_after = faults.has_reset() ? *faults.reset_after : -1;
  int events = 0;
  auto emit = [&](std::string_view event) {
    if (drip_ms > 0)
      out += event;
    else
      append_frame(out, event, chunked);
    ++events;
    return reset_after >= 0 && events >= reset_after;
  };
  auto send_out = [&]() -> Task<bool> {
    if (drip_ms <= 0) co_return co_await flush(sock, out);
    bool ok = co_await drip(sock, out, drip_ms, chunked);
    out.clear();
    co_return ok;
  };
  auto reset_now = [&]() -> Task<After> {
    bool flushed = co_await send_out();
    if (flushed) co_await wait_send_queue_drained(sock);
    reset_connection(sock);
    co_return After::gone;
  };
  auto finish = [&]() -> Task<After> {
    if (drip_ms > 0 && !(co_await send_out())) co_return After::gone;
    if (chunked) out += "0\r\n\r\n";
    // A close-delimited body would swallow the junk as more SSE bytes.
    std::string_view extra = chunked ? extra_response : std::string_view{};
    int extra_delay = faults.extra_response_delay();
    if (extra_delay <= 0) out += extra;
    bool flushed = co_await flush(sock, out);
    if (!flushed) co_return After::gone;
    if (!(co_await send_delayed_extra(sock, extra, extra_delay))) co_return After::gone;
    co_return keep_alive ? After::keep_alive : After::close;
  };

  // event_error / typed_error: due at the very start (at_stream_start), or
  // once `pieces` content events are out; a position past the last content
  // event fires just before the epilogue. Returns true when reset_after hits.
  std::size_t pieces = 0;
  std::optional<int> event_error_at = faults.has_event_error() ? faults.event_error : std::nullopt;
  std::optional<int> typed_error_at = faults.has_typed_error() ? faults.typed_error : std::nullopt;
  enum class Point { start, flow, epilogue };
  auto emit_injected = [&](Point point) {
    auto due = [&](std::optional<int>& at) {
      if (!at) return false;
      bool now = point == Point::start  ? *at == Faults::at_stream_start
                 : point == Point::flow ? *at >= 0 && pieces >= static_cast<std::size_t>(*at)
                                        : *at >= 0;
      if (now) at.reset();
      return now;
    };
    if (due(event_error_at) && emit(stream.named_error_event())) return true;
    return due(typed_error_at) && emit(SseStream::typed_error_event());
  };

  if (reset_after == 0) co_return co_await reset_now();
  if (emit_injected(Point::start)) co_return co_await reset_now();

  Timer timer(sock.get_executor());
  std::string event;
  while (auto kind = stream.next(event)) {
    bool is_content = *kind == SseStream::Kind::content;
    // Before the first content event (position 0) or the epilogue (a
    // position past the last content event).
    Point before = *kind == SseStream::Kind::epilogue ? Point::epilogue : Point::flow;
    if (*kind != SseStream::Kind::prelude && emit_injected(before)) co_return co_await reset_now();
    if (is_content && pieces > 0 && chunk_delay_ms > 0) {
      bool flushed = co_await send_out();
      if (!flushed) co_return After::gone;
      timer.expires_after(std::chrono::milliseconds(chunk_delay_ms));
      co_await timer.async_wait(no_throw);
    }
    bool must_reset = emit(event);
    event.clear();
    bool first_content = is_content && pieces++ == 0;
    if (!must_reset && first_content && faults.is_malformed()) must_reset = emit(stream.malformed_event());
    if (!must_reset && is_content) must_reset = emit_injected(Point::flow);
    if (!must_reset && first_content && faults.is_stream_error()) {
      if (emit(stream.error_event())) co_return co_await reset_now();
      co_return co_await finish();
    }
    if (must_reset) co_return co_await reset_now();
  }
  co_return co_await finish();
}

std::string serialize_head(const Response& res) {
  std::ostringstream os;
  os << res.base();  // status line, fields and the blank line
  return std::move(os).str();
}

// Sends a non-streaming chat response (200 or injected error) with the
// body- and connection-level faults applied. Without any of them this is
// exactly write_response(), so the benchmark path does not change.
Task<After> send_chat_response(Socket& sock, Response& res, const Faults& faults, const EchoAuth* echo,
                               std::string_view extra_response) {
  if (echo)
    echo->for_each_header([&](std::string_view name, std::string_view value) { res.set(name, value); });
  if (faults.is_nul_suffix()) res.body().append(std::string_view{"\0garbage", 8});
  if (faults.is_gzip()) {
    // Whatever Accept-Encoding said: that is the misbehaviour under test.
    res.body() = gzip_stored(res.body());
    res.set(http::field::content_encoding, "gzip");
  }
  res.prepare_payload();

  int drip_ms = faults.drip();
  if (drip_ms <= 0 && extra_response.empty()) co_return co_await write_response(sock, res);

  std::string wire = serialize_head(res);
  int extra_delay = faults.extra_response_delay();
  if (drip_ms > 0) {
    if (!(co_await write_all(sock, wire))) co_return After::gone;
    if (!(co_await drip(sock, res.body(), drip_ms, false))) co_return After::gone;
    wire.clear();
  } else {
    wire += res.body();
  }
  // Same write as the real response, so the junk is already in the client's
  // receive buffer when it finishes parsing the real one.
  if (extra_delay <= 0) wire += extra_response;
  if (!(co_await write_all(sock, wire))) co_return After::gone;
  if (extra_delay > 0 && !(co_await send_delayed_extra(sock, extra_response, extra_delay)))
    co_return After::gone;
  co_return res.keep_alive() ? After::keep_alive : After::close;
}

Task<After> handle_chat(Socket& sock, const Request& req, ApiFormat format, Faults faults, Context& ctx) {
  if (format == ApiFormat::anthropic && req.find("anthropic-version") == req.end()) {
    co_return co_await send(sock, req, 400,
                            render_error(format, 400, "anthropic-version: header is required"));
  }
  ChatRequest chat;
  if (auto err = parse_chat_request(req.body(), format, chat)) {
    co_return co_await send(sock, req, 400, render_error(format, 400, *err));
  }
  faults.override_with(chat.faults);
  if (faults.is_byte_tokens()) chat.prompt_tokens = chat.prompt_bytes;

  if (faults.delay_ms && *faults.delay_ms > 0) co_await sleep_ms(sock, *faults.delay_ms);

  EchoAuth echo_auth{req[http::field::authorization], req["x-api-key"]};
  const EchoAuth* echo = faults.is_echo_auth() ? &echo_auth : nullptr;
  std::string extra =
      faults.wants_extra_response() ? poisoned_http_response(format, chat.model) : std::string{};

  if (faults.has_error_status()) {
    auto status = static_cast<unsigned>(*faults.status);
    std::string message = echo ? echo_auth_message(format, echo->authorization, echo->api_key)
                               : "mock fault: injected HTTP " + std::to_string(status);
    if (faults.is_invalid_utf8()) {
      message += ' ';
      message += invalid_utf8_bytes;
    }
    bool raw_bytes = echo || faults.is_invalid_utf8();
    Response res = make_response(req, status, render_error(format, *faults.status, message, raw_bytes));
    // 429 always advertises a retry delay, like the real APIs; other
    // statuses only when a test asked for one explicitly.
    if (status == 429 || faults.retry_after) {
      res.set(http::field::retry_after, std::to_string(faults.retry_after.value_or(1)));
    }
    co_return co_await send_chat_response(sock, res, faults, echo, extra);
  }

  std::uint64_t id = ctx.next_id.fetch_add(1, std::memory_order_relaxed);
  auto created = static_cast<std::int64_t>(std::time(nullptr));
  Reply reply = make_reply(chat, ctx.options, faults);

  if (!chat.stream) {
    if (faults.has_reset()) {
      reset_connection(sock);
      co_return After::gone;
    }
    if (faults.is_hang()) {
      co_await wait_for_peer_close(sock);
      co_return After::gone;
    }
    Response res = make_response(
        req, 200,
        faults.is_malformed() ? "this is not json" : render_response(chat, reply, id, created, faults));
    co_return co_await send_chat_response(sock, res, faults, echo, extra);
  }

  int chunk_delay = faults.chunk_delay_ms.value_or(ctx.options.chunk_delay_ms);
  SseStream stream(chat, std::move(reply), id, created, faults);
  co_return co_await write_stream(sock, req, stream, faults, chunk_delay, echo, extra);
}

Task<After> method_not_allowed(Socket& sock, const Request& req, ApiFormat format, const char* allow) {
  Response res = make_response(
      req, 405, render_error(format, 405, "method " + std::string(req.method_string()) + " not allowed"));
  res.set(http::field::allow, allow);
  co_return co_await write_response(sock, res);
}

Task<After> not_found(Socket& sock, const Request& req, std::string_view path) {
  co_return co_await send(
      sock, req, 404,
      render_error(ApiFormat::openai, 404,
                   "no route for " + std::string(req.method_string()) + " " + std::string(path)));
}

Task<After> handle_control(Socket& sock, const Request& req, std::string_view path, Context& ctx) {
  http::verb method = req.method();
  if (path == "/_mock/faults") {
    if (method == http::verb::post) {
      InstanceFaults faults;
      if (auto err = parse_instance_faults(req.body(), faults)) {
        co_return co_await send(sock, req, 400, render_error(ApiFormat::openai, 400, *err));
      }
      ctx.state.set_faults(std::move(faults));
      co_return co_await send(sock, req, 204, {});
    }
    if (method == http::verb::delete_) {
      ctx.state.clear_faults();
      co_return co_await send(sock, req, 204, {});
    }
    co_return co_await method_not_allowed(sock, req, ApiFormat::openai, "POST, DELETE");
  }
  if (path == "/_mock/stats") {
    if (method != http::verb::get) co_return co_await method_not_allowed(sock, req, ApiFormat::openai, "GET");
    co_return co_await send(sock, req, 200, ctx.state.render_stats());
  }
  if (path == "/_mock/reset") {
    if (method != http::verb::post)
      co_return co_await method_not_allowed(sock, req, ApiFormat::openai, "POST");
    ctx.state.reset();
    co_return co_await send(sock, req, 204, {});
  }
  co_return co_await not_found(sock, req, path);
}

RecordedRequest record(const Request& req, std::string_view path) {
  RecordedRequest rec;
  rec.method = std::string(req.method_string());
  rec.path = std::string(path);
  for (const auto& field : req) {
    rec.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  rec.body = req.body();
  return rec;
}

// Ollama's chat API (POST /api/chat): newline-delimited JSON, for adapters
// that frame streams as NDJSON. `no_usage` leaves out the final "done" line:
// the stream then just ends.
Task<After> handle_ndjson_chat(Socket& sock, const Request& req, Faults faults, Context& ctx) {
  ChatRequest chat;
  if (auto err = parse_chat_request(req.body(), ApiFormat::openai, chat))
    co_return co_await send(sock, req, 400, render_ndjson_error(*err));
  faults.override_with(chat.faults);
  if (faults.has_error_status()) {
    auto status = static_cast<unsigned>(*faults.status);
    Response res = make_response(req, status,
                                 render_ndjson_error("mock fault: injected HTTP " + std::to_string(status)));
    if (status == 429) res.set(http::field::retry_after, "1");
    co_return co_await write_response(sock, res);
  }
  Reply reply = make_reply(chat, ctx.options, faults);
  std::string body = render_ndjson_chat(chat, reply, !faults.is_no_usage());
  Response res =
      make_response(req, 200, std::move(body), chat.stream ? "application/x-ndjson" : "application/json");
  co_return co_await write_response(sock, res);
}

Task<After> handle(Socket& sock, const Request& req, Context& ctx) {
  std::string_view path = path_of(req.target());
  if (ctx.verbose) std::cerr << "ferry-mock-upstream: " << req.method_string() << ' ' << req.target() << '\n';

  if (path.starts_with("/_mock/")) co_return co_await handle_control(sock, req, path, ctx);

  bool is_post = req.method() == http::verb::post;
  bool openai_chat = path == "/v1/chat/completions";
  bool anthropic_chat = path == "/v1/messages";
  bool embeddings = path == "/v1/embeddings";
  bool ndjson_chat = path == "/api/chat";
  Faults faults = ctx.state.on_request(
      record(req, path), (openai_chat || anthropic_chat || embeddings || ndjson_chat) && is_post);
  if (ndjson_chat) {
    if (!is_post) co_return co_await method_not_allowed(sock, req, ApiFormat::openai, "POST");
    co_return co_await handle_ndjson_chat(sock, req, faults, ctx);
  }

  if (openai_chat) {
    if (!is_post) co_return co_await method_not_allowed(sock, req, ApiFormat::openai, "POST");
    co_return co_await handle_chat(sock, req, ApiFormat::openai, faults, ctx);
  }
  if (anthropic_chat) {
    if (!is_post) co_return co_await method_not_allowed(sock, req, ApiFormat::anthropic, "POST");
    co_return co_await handle_chat(sock, req, ApiFormat::anthropic, faults, ctx);
  }
  if (embeddings) {
    if (!is_post) co_return co_await method_not_allowed(sock, req, ApiFormat::openai, "POST");
    if (faults.delay_ms && *faults.delay_ms > 0) co_await sleep_ms(sock, *faults.delay_ms);
    if (faults.has_error_status()) {
      int status = *faults.status;
      co_return co_await send(
          sock, req, static_cast<unsigned>(status),
          render_error(ApiFormat::openai, status, "mock fault: injected HTTP " + std::to_string(status)));
    }
    std::string error;
    auto body = render_embeddings(req.body(), error);
    if (!body) co_return co_await send(sock, req, 400, render_error(ApiFormat::openai, 400, error));
    co_return co_await send(sock, req, 200, std::move(*body));
  }
  if (path == "/v1/models") {
    if (req.method() != http::verb::get)
      co_return co_await method_not_allowed(sock, req, ApiFormat::openai, "GET");
    co_return co_await send(sock, req, 200, render_models());
  }
  co_return co_await not_found(sock, req, path);
}

// Answers a request Beast could not parse; the connection is closed after.
Task<> reject_unparsable(Socket& sock, const http::request_parser<http::string_body>& parser, error_code ec) {
  unsigned status = 400;
  if (ec == http::error::body_limit) status = 413;
  if (ec == http::error::header_limit) status = 431;
  bool anthropic = parser.is_header_done() && path_of(parser.get().target()) == "/v1/messages";
  ApiFormat format = anthropic ? ApiFormat::anthropic : ApiFormat::openai;

  Response res;
  res.version(11);
  res.result(status);
  res.set(http::field::server, "ferry-mock-upstream");
  res.set(http::field::content_type, "application/json");
  res.keep_alive(false);
  std::string message = status == 413   ? "request body exceeds the 8 MiB limit"
                        : status == 431 ? "request header fields too large"
                                        : "malformed HTTP request: " + ec.message();
  res.body() = render_error(format, static_cast<int>(status), message);
  res.prepare_payload();
  co_await write_response(sock, res);
}

bool is_parse_error(error_code ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

Task<> serve_connection(Socket sock, Context& ctx) {
  try {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(max_header_bytes);
      parser.body_limit(max_body_bytes);

      auto [ec, n] = co_await http::async_read_header(sock, buffer, parser, no_throw);
      if (!ec && parser.get()[http::field::expect] == "100-continue") {
        // Clients such as curl otherwise stall a second before sending large bodies.
        static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
        std::tie(ec, n) = co_await asio::async_write(sock, asio::buffer(cont), no_throw);
      }
      if (!ec) std::tie(ec, n) = co_await http::async_read(sock, buffer, parser, no_throw);
      if (ec) {
        if (is_parse_error(ec)) co_await reject_unparsable(sock, parser, ec);
        break;
      }

      Request req = parser.release();
      After after = co_await handle(sock, req, ctx);
      if (after == After::gone) co_return;
      if (after == After::close) break;
    }
    error_code ignored;
    sock.shutdown(tcp::socket::shutdown_send, ignored);
    sock.close(ignored);
  } catch (const std::exception& e) {
    if (ctx.verbose) std::cerr << "ferry-mock-upstream: connection error: " << e.what() << '\n';
  }
}

Task<> accept_loop(Acceptor acceptor, Context& ctx) {
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(no_throw);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      if (ctx.verbose) std::cerr << "ferry-mock-upstream: accept: " << ec.message() << '\n';
      // Typically EMFILE: back off instead of spinning on a full fd table.
      Timer timer(acceptor.get_executor());
      timer.expires_after(std::chrono::milliseconds(10));
      co_await timer.async_wait(no_throw);
      continue;
    }
    error_code ignored;
    // SSE events are small writes; Nagle would hold them back for the ACK.
    sock.set_option(tcp::no_delay(true), ignored);
    asio::co_spawn(acceptor.get_executor(), serve_connection(std::move(sock), ctx), asio::detached);
  }
}

// Thousands of concurrent streams need more descriptors than the usual soft limit.
void raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

void usage(std::ostream& os) {
  os << "usage: ferry-mock-upstream [--listen HOST:PORT] [--threads N] [--chunk-delay-ms MS] [--words N] "
        "[--verbose]\n";
}

bool parse_number(std::string_view s, int min, int max, int& out) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v < min || v > max) return false;
  out = v;
  return true;
}

bool parse_listen(std::string_view s, Config& cfg) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  if (!parse_number(s.substr(colon + 1), 0, 65535, port)) return false;
  cfg.host = host.empty() ? "0.0.0.0" : std::string(host);
  cfg.port = static_cast<unsigned short>(port);
  return true;
}

// Returns an exit code when the process should stop right away.
std::optional<int> parse_args(int argc, char** argv, Config& cfg) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    bool has_inline = false;
    if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_inline = true;
    }
    if (arg == "-h" || arg == "--help") {
      usage(std::cout);
      return 0;
    }
    if (arg == "-v" || arg == "--verbose") {
      cfg.verbose = true;
      continue;
    }
    bool known = arg == "--listen" || arg == "--threads" || arg == "--chunk-delay-ms" || arg == "--words";
    if (!known) {
      std::cerr << "ferry-mock-upstream: unknown option " << arg << '\n';
      usage(std::cerr);
      return 2;
    }
    if (!has_inline) {
      if (i + 1 >= argc) {
        std::cerr << "ferry-mock-upstream: " << arg << " needs a value\n";
        usage(std::cerr);
        return 2;
      }
      value = argv[++i];
    }
    bool ok = false;
    if (arg == "--listen")
      ok = parse_listen(value, cfg);
    else if (arg == "--threads")
      ok = parse_number(value, 1, 1024, cfg.threads);
    else if (arg == "--chunk-delay-ms")
      ok = parse_number(value, 0, 3600000, cfg.options.chunk_delay_ms);
    else if (arg == "--words")
      ok = parse_number(value, 0, 10000000, cfg.options.words);
    if (!ok) {
      std::cerr << "ferry-mock-upstream: bad value for " << arg << ": '" << value << "'" << '\n';
      usage(std::cerr);
      return 2;
    }
  }
  return std::nullopt;
}

int run(const Config& cfg) {
  raise_fd_limit();
  std::signal(SIGPIPE, SIG_IGN);

  error_code ec;
  asio::ip::address address = asio::ip::make_address(cfg.host == "localhost" ? "127.0.0.1" : cfg.host, ec);
  if (ec) {
    std::cerr << "ferry-mock-upstream: bad listen address '" << cfg.host << "': " << ec.message() << '\n';
    return 2;
  }

  Context ctx;
  ctx.options = cfg.options;
  ctx.verbose = cfg.verbose;

  // One single-threaded io_context per thread: no cross-thread handoff on
  // the hot path, and the kernel spreads connections over the acceptors.
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  for (int i = 0; i < cfg.threads; ++i) contexts.push_back(std::make_unique<asio::io_context>(1));

  tcp::endpoint endpoint{address, cfg.port};
  for (auto& ioc : contexts) {
    Acceptor acceptor(ioc->get_executor());
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.set_option(ReusePort(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      std::cerr << "ferry-mock-upstream: cannot listen on " << endpoint << ": " << ec.message() << '\n';
      return 1;
    }
    // Port 0 picks a free port once; the remaining acceptors share it.
    endpoint.port(acceptor.local_endpoint().port());
    asio::co_spawn(*ioc, accept_loop(std::move(acceptor), ctx), asio::detached);
  }

  asio::signal_set signals(*contexts.front(), SIGINT, SIGTERM);
  signals.async_wait([&contexts](const error_code&, int) {
    for (auto& ioc : contexts) ioc->stop();
  });

  std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  std::cout << "listening " << host << ':' << endpoint.port() << std::endl;

  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < contexts.size(); ++i) {
    threads.emplace_back([&ioc = *contexts[i]] { ioc.run(); });
  }
  contexts.front()->run();
  for (auto& t : threads) t.join();
  return 0;
}

}  // namespace
}  // namespace ferry::mock

int main(int argc, char** argv) {
  ferry::mock::Config cfg;
  if (auto exit_code = ferry::mock::parse_args(argc, argv, cfg)) return *exit_code;
  try {
    return ferry::mock::run(cfg);
  } catch (const std::exception& e) {
    std::cerr << "ferry-mock-upstream: fatal: " << e.what() << '\n';
    return 1;
  }
}
