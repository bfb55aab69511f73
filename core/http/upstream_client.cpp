// The only translation unit of ferry_core that includes Beast: Beast is slow
// to compile, so the rest of the core sees the UpstreamClient interface only.
#include "core/http/upstream_client.h"

#include <openssl/ssl.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/http/url.h"

namespace ferry::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// One TLS context per trust store, shared by all workers (an SSL_CTX is safe to
// share once set up). Peers are always verified; there is no option not to.
ssl::context* tls_context(const std::string& ca_file, std::string& error) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<ssl::context>> contexts;
  std::lock_guard lock(mu);
  auto& slot = contexts[ca_file];
  if (!slot) {
    auto c = std::make_unique<ssl::context>(ssl::context::tls_client);
    c->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    if (ca_file.empty())
      c->set_default_verify_paths(ec);
    else
      c->load_verify_file(ca_file, ec);
    if (ec) {
      error = "cannot load trusted certificates" + (ca_file.empty() ? std::string() : " from " + ca_file) +
              ": " + ec.message();
      contexts.erase(ca_file);
      return nullptr;
    }
    c->set_verify_mode(ssl::verify_peer);
    slot = std::move(c);
  }
  return slot.get();
}

UpstreamError map_error(const error_code& ec, std::string_view during) {
  using K = UpstreamError::Kind;
  std::string what = std::string(during) + ": " + ec.message();
  if (ec == asio::error::operation_aborted) return {K::kCancelled, std::string(during) + ": cancelled"};
  if (ec == beast::error::timeout) return {K::kTimeout, std::string(during) + ": timed out"};
  if (ec == asio::error::connection_refused || ec == asio::error::host_not_found ||
      ec == asio::error::host_not_found_try_again || ec == asio::error::network_unreachable ||
      ec == asio::error::host_unreachable)
    return {K::kConnect, what};
  if (ec == asio::error::connection_reset || ec == asio::error::eof || ec == asio::error::broken_pipe ||
      ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
      ec == asio::error::connection_aborted)
    return {K::kReset, what};
  if (ec.category() == asio::error::get_ssl_category() ||
      ec.category() == asio::ssl::error::get_stream_category())
    return {K::kTls, what};
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category())
    return {K::kProtocol, std::string(during) + ": invalid HTTP: " + ec.message()};
  return {K::kReset, what};
}

struct Connection {
  std::string pool_key;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  std::chrono::steady_clock::time_point idle_since;
  bool reused = false;

  beast::tcp_stream& tcp() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
};

class ClientImpl;

using Clock = std::chrono::steady_clock;

// The time an operation may take: the per-read timeout, unless less than that
// is left of the whole exchange (`total_cut` then says so).
std::chrono::milliseconds time_left(std::chrono::milliseconds per_read, Clock::time_point deadline,
                                    bool& total_cut) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  total_cut = left < per_read;
  return std::max(std::chrono::milliseconds(1), std::min(per_read, left));
}

UpstreamError total_timeout(const UpstreamOptions& o) {
  return {UpstreamError::Kind::kTimeout,
          "the exchange took longer than its total timeout of " + std::to_string(o.total.count()) + " ms"};
}

class Exchange final : public UpstreamExchange {
 public:
  Exchange(ClientImpl& client, std::unique_ptr<Connection> conn,
           std::unique_ptr<bhttp::response_parser<bhttp::buffer_body>> parser, UpstreamOptions options,
           Clock::time_point deadline, asio::cancellation_slot cancel)
      : client_(client),
        conn_(std::move(conn)),
        parser_(std::move(parser)),
        options_(std::move(options)),
        read_timeout_(options_.read),
        deadline_(deadline),
        cancel_(cancel) {
    const auto& res = parser_->get();
    status_ = static_cast<int>(res.result_int());
    for (const auto& f : res) headers_.add(f.name_string(), f.value());
  }
  ~Exchange() override;

  int status() const override { return status_; }
  const util::Headers& headers() const override { return headers_; }

  asio::awaitable<UpstreamError> read_some(std::string& out, bool* done) override {
    *done = false;
    if (!conn_) {
      *done = true;
      co_return UpstreamError{};
    }
    if (parser_->is_done()) {
      finish();
      *done = true;
      co_return UpstreamError{};
    }
    auto& body = parser_->get().body();
    body.data = buf_.data();
    body.size = buf_.size();
    bool total_cut = false;
    conn_->tcp().expires_after(time_left(read_timeout_, deadline_, total_cut));
    auto token = asio::bind_cancellation_slot(cancel_, kNoThrow);
    error_code ec;
    if (conn_->secure)
      std::tie(ec, std::ignore) =
          co_await bhttp::async_read_some(*conn_->secure, conn_->buffer, *parser_, token);
    else
      std::tie(ec, std::ignore) =
          co_await bhttp::async_read_some(*conn_->plain, conn_->buffer, *parser_, token);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      conn_.reset();
      if (ec == beast::error::timeout && total_cut) co_return total_timeout(options_);
      co_return map_error(ec, "reading the upstream body");
    }
    out.append(buf_.data(), buf_.size() - body.size);
    if (parser_->is_done()) {
      finish();
      *done = true;
    }
    co_return UpstreamError{};
  }

  void set_read_timeout(std::chrono::milliseconds timeout) override { read_timeout_ = timeout; }

  asio::awaitable<void> discard_rest(std::chrono::milliseconds timeout, size_t limit) override {
    read_timeout_ = timeout;
    std::string ignored;
    bool done = false;
    while (conn_ && !done && ignored.size() <= limit) {
      auto err = co_await read_some(ignored, &done);
      if (err) break;
    }
    conn_.reset();  // not at the end (or already returned to the pool by finish())
  }

  asio::awaitable<UpstreamError> read_all(std::string& out, size_t limit) override {
    bool done = false;
    while (!done) {
      auto err = co_await read_some(out, &done);
      if (err) co_return err;
      if (out.size() > limit) {
        conn_.reset();
        co_return UpstreamError{UpstreamError::Kind::kTooLarge,
                                "upstream body larger than " + std::to_string(limit) + " bytes"};
      }
    }
    co_return UpstreamError{};
  }

 private:
  void finish();

  ClientImpl& client_;
  std::unique_ptr<Connection> conn_;
  std::unique_ptr<bhttp::response_parser<bhttp::buffer_body>> parser_;
  UpstreamOptions options_;
  std::chrono::milliseconds read_timeout_;
  Clock::time_point deadline_;
  asio::cancellation_slot cancel_;
  int status_ = 0;
  util::Headers headers_;
  std::array<char, 16 * 1024> buf_;
};

class ClientImpl final : public UpstreamClient {
 public:
  explicit ClientImpl(asio::any_io_executor ex) : ex_(std::move(ex)), resolver_(ex_) {}

  asio::awaitable<SendResult> send(const UpstreamRequest& request, const UpstreamOptions& options,
                                   asio::cancellation_slot cancel) override {
    const auto deadline = Clock::now() + options.total;
    auto token = asio::bind_cancellation_slot(cancel, kNoThrow);
    std::string why;
    auto url = parse_url(request.url, &why);
    SendResult failed;
    if (!url) {
      failed.error = UpstreamError{UpstreamError::Kind::kConnect, "bad upstream URL: " + why};
      co_return failed;
    }

    bhttp::request<bhttp::string_body> req;
    req.method_string(request.method);
    req.target(url->target);
    req.version(11);
    std::string host_header = url->host.find(':') != std::string::npos ? "[" + url->host + "]" : url->host;
    if ((url->tls && url->port != 443) || (!url->tls && url->port != 80))
      host_header += ":" + std::to_string(url->port);
    req.set(bhttp::field::host, host_header);
    req.set(bhttp::field::user_agent, "ferryd");
    for (const auto& h : request.headers) req.set(h.name, h.value);
    req.keep_alive(true);
    req.body() = request.body;
    req.prepare_payload();

    // Connections are pooled per origin and trust store.
    std::string pool_key = url->origin() + (options.ca_file.empty() ? "" : " ca=" + options.ca_file);
    // A pooled connection may have been closed by the server while idle; that
    // shows as a failure before any response byte, so retry once on a fresh one.
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::unique_ptr<Connection> conn = take_idle(pool_key);
      if (!conn) {
        UpstreamError err;
        conn = co_await connect(*url, pool_key, options, cancel, err);
        if (err) {
          failed.error = std::move(err);
          co_return failed;
        }
      }
      auto parser = std::make_unique<bhttp::response_parser<bhttp::buffer_body>>();
      parser->body_limit(boost::none);
      parser->header_limit(64 * 1024);
      bool reused = conn->reused;
      bool total_cut = false;
      conn->tcp().expires_after(time_left(options.read, deadline, total_cut));
      error_code ec;
      if (conn->secure)
        std::tie(ec, std::ignore) = co_await bhttp::async_write(*conn->secure, req, token);
      else
        std::tie(ec, std::ignore) = co_await bhttp::async_write(*conn->plain, req, token);
      if (!ec) {
        conn->tcp().expires_after(time_left(options.read, deadline, total_cut));
        if (conn->secure)
          std::tie(ec, std::ignore) =
              co_await bhttp::async_read_header(*conn->secure, conn->buffer, *parser, token);
        else
          std::tie(ec, std::ignore) =
              co_await bhttp::async_read_header(*conn->plain, conn->buffer, *parser, token);
      }
      if (ec) {
        if (ec == beast::error::timeout && total_cut) {
          failed.error = total_timeout(options);
          co_return failed;
        }
        auto err = map_error(ec, "waiting for the upstream answer");
        if (reused && err.kind == UpstreamError::Kind::kReset) continue;
        failed.error = std::move(err);
        co_return failed;
      }
      (reused ? stats_.connections_reused : stats_.connections_opened)
          .fetch_add(1, std::memory_order_relaxed);
      SendResult ok;
      ok.exchange =
          std::make_unique<Exchange>(*this, std::move(conn), std::move(parser), options, deadline, cancel);
      co_return ok;
    }
    failed.error = UpstreamError{UpstreamError::Kind::kReset, "upstream closed the connection twice"};
    co_return failed;
  }

  void close_idle() override { idle_.clear(); }
  const PoolStats& stats() const override { return stats_; }

  void release(std::unique_ptr<Connection> conn) {
    auto& list = idle_[conn->pool_key];
    if (list.size() >= kMaxIdlePerOrigin) return;
    conn->reused = true;
    conn->idle_since = std::chrono::steady_clock::now();
    list.push_back(std::move(conn));
  }

 private:
  static constexpr size_t kMaxIdlePerOrigin = 256;
  static constexpr auto kMaxIdle = std::chrono::seconds(30);

  std::unique_ptr<Connection> take_idle(const std::string& pool_key) {
    auto it = idle_.find(pool_key);
    if (it == idle_.end()) return nullptr;
    auto now = std::chrono::steady_clock::now();
    while (!it->second.empty()) {
      auto conn = std::move(it->second.back());
      it->second.pop_back();
      // Bytes that arrived while it sat idle answer nothing we asked: a
      // server that sends them must not have them read as the next answer.
      error_code ec;
      bool unread = conn->tcp().socket().available(ec) > 0 || ec;
      if (now - conn->idle_since < kMaxIdle && conn->tcp().socket().is_open() && !unread) return conn;
    }
    return nullptr;
  }

  asio::awaitable<std::unique_ptr<Connection>> connect(const Url& url, const std::string& pool_key,
                                                       const UpstreamOptions& options,
                                                       asio::cancellation_slot cancel, UpstreamError& err) {
    auto token = asio::bind_cancellation_slot(cancel, kNoThrow);
    auto conn = std::make_unique<Connection>();
    conn->pool_key = pool_key;
    auto [rec, endpoints] = co_await resolver_.async_resolve(url.host, std::to_string(url.port), kNoThrow);
    if (rec) {
      err = {UpstreamError::Kind::kConnect, "cannot resolve " + url.host + ": " + rec.message()};
      co_return nullptr;
    }
    if (url.tls) {
      std::string why;
      ssl::context* tls = tls_context(options.ca_file, why);
      if (!tls) {
        err = {UpstreamError::Kind::kTls, why};
        co_return nullptr;
      }
      conn->secure.emplace(ex_, *tls);
      auto* native = conn->secure->native_handle();
      if (!SSL_set_tlsext_host_name(native, url.host.c_str())) {
        err = {UpstreamError::Kind::kTls, "cannot set TLS server name for " + url.host};
        co_return nullptr;
      }
      conn->secure->set_verify_callback(ssl::host_name_verification(url.host));
    } else {
      conn->plain.emplace(ex_);
    }
    auto& tcp = conn->tcp();
    tcp.expires_after(options.connect);
    auto [cec, ep] = co_await tcp.async_connect(endpoints, token);
    if (cec) {
      err = map_error(cec, "connecting to " + url.origin());
      co_return nullptr;
    }
    tcp.socket().set_option(tcp::no_delay(true));
    if (conn->secure) {
      tcp.expires_after(options.connect);
      auto [hec] = co_await conn->secure->async_handshake(ssl::stream_base::client, token);
      if (hec) {
        err = {UpstreamError::Kind::kTls, "TLS handshake with " + url.origin() + " failed: " + hec.message()};
        co_return nullptr;
      }
    }
    co_return conn;
  }

  asio::any_io_executor ex_;
  tcp::resolver resolver_;
  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;
  PoolStats stats_;
};

Exchange::~Exchange() = default;

void Exchange::finish() {
  if (!conn_) return;
  // Bytes after the end of the body are no answer to anything: a connection
  // holding them is never reused (they would be read as the next answer).
  if (parser_->keep_alive() && conn_->buffer.size() == 0) {
    conn_->tcp().expires_never();
    client_.release(std::move(conn_));
  }
  conn_.reset();
}

}  // namespace

std::unique_ptr<UpstreamClient> UpstreamClient::create(asio::any_io_executor executor) {
  return std::make_unique<ClientImpl>(std::move(executor));
}

}  // namespace ferry::http
