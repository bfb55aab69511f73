#pragma once

// Included by the listener only: Beast's HTTP templates are expensive to
// compile, so one translation unit of ferryd instantiates them.

#include <array>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "host/ferryd/http_writer.h"

namespace ferry::host {

// Writes the engine's answer onto a Beast stream. An HTTP/1.0 client gets a
// stream as a body that ends when the connection closes (it knows no chunks).
class BeastWriter final : public HttpWriter {
 public:
  BeastWriter(boost::beast::tcp_stream& stream, std::string_view request_id, bool keep_alive,
              std::chrono::milliseconds timeout, unsigned version = 11)
      : stream_(stream),
        request_id_(request_id),
        keep_alive_(keep_alive),
        timeout_(timeout),
        version_(version),
        chunked_(version >= 11) {}

  boost::asio::awaitable<bool> send(int status, std::string_view content_type, std::string_view body,
                                    const util::Headers& headers) override {
    namespace bhttp = boost::beast::http;
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
  boost::asio::awaitable<bool> send_json(int status, std::string_view body, const util::Headers& headers) {
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

  boost::asio::awaitable<bool> flush() override {
    namespace asio = boost::asio;
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
  static constexpr auto kNoThrow = boost::asio::as_tuple(boost::asio::use_awaitable);

  boost::beast::tcp_stream& stream_;
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

}  // namespace ferry::host
