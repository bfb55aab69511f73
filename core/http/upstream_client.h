#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include "core/util/headers.h"

namespace ferry::http {

// The HTTP request a provider adapter builds through ferry_upstream.
struct UpstreamRequest {
  std::string method = "POST";
  std::string url;
  util::Headers headers;
  std::string body;
  bool streaming = false;
};

// How to reach one provider's upstream.
struct UpstreamOptions {
  std::chrono::milliseconds connect{5000};
  std::chrono::milliseconds read{60000};  // for the response head and between body reads
  // The whole exchange, however the bytes trickle in: an upstream sending a
  // byte every few seconds never trips `read`. Ten minutes, as the official
  // OpenAI and Anthropic clients default to.
  std::chrono::milliseconds total{600'000};
  std::string ca_file;  // PEM bundle to trust instead of the system store
};

// Why an exchange failed. kind decides failover (all of these may fail over).
struct UpstreamError {
  enum class Kind { kNone, kConnect, kTimeout, kReset, kProtocol, kTls, kTooLarge, kCancelled };
  Kind kind = Kind::kNone;
  std::string message;
  explicit operator bool() const { return kind != Kind::kNone; }
};

// One request/response on a pooled connection. The connection returns to the
// pool only if the body was read to the end, exactly (no byte after it), and
// the server allows keep-alive.
class UpstreamExchange {
 public:
  virtual ~UpstreamExchange() = default;
  virtual int status() const = 0;
  virtual const util::Headers& headers() const = 0;
  // Appends the next piece of body to `out`; sets *done at the end of the body.
  virtual boost::asio::awaitable<UpstreamError> read_some(std::string& out, bool* done) = 0;
  // Changes the time allowed for each later read.
  virtual void set_read_timeout(std::chrono::milliseconds timeout) = 0;
  // Reads the rest of the body into `out`, up to limit bytes.
  virtual boost::asio::awaitable<UpstreamError> read_all(std::string& out, size_t limit) = 0;
  // Reads and drops what is left of the body (e.g. the last chunk after a
  // stream's final event) so the connection can return to the pool; gives up,
  // closing the connection, after `timeout` or `limit` bytes.
  virtual boost::asio::awaitable<void> discard_rest(std::chrono::milliseconds timeout, size_t limit) = 0;
};

struct SendResult {
  UpstreamError error;
  std::unique_ptr<UpstreamExchange> exchange;  // set iff !error
};

// Read from other threads (metrics) while the worker updates them.
struct PoolStats {
  std::atomic<uint64_t> connections_opened{0};
  std::atomic<uint64_t> connections_reused{0};
};

// Client for one worker thread: all its connections belong to that thread's
// io_context, so the pool needs no locks.
class UpstreamClient {
 public:
  virtual ~UpstreamClient() = default;
  // Connects (or reuses a pooled connection), sends the request and reads the
  // response head. Emitting on `cancel`'s signal ends this and the
  // exchange's later reads with Kind::kCancelled.
  virtual boost::asio::awaitable<SendResult> send(const UpstreamRequest& request,
                                                  const UpstreamOptions& options,
                                                  boost::asio::cancellation_slot cancel = {}) = 0;
  // Closes idle pooled connections (drain).
  virtual void close_idle() = 0;
  virtual const PoolStats& stats() const = 0;

  static std::unique_ptr<UpstreamClient> create(boost::asio::any_io_executor executor);
};

}  // namespace ferry::http
