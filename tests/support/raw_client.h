#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace ferry::test {

// A plain TCP connection for what an HTTP library will not send: partial
// heads, HTTP/1.0, Expect, bytes that are not UTF-8, silence.
class RawClient {
 public:
  // Connects to "host:port"; connected() tells whether it worked.
  explicit RawClient(const std::string& address);
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool send(std::string_view bytes);
  // What arrives within `timeout` (empty if nothing did).
  std::string read_some(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Everything until the peer closes, or `timeout` passes (closed() tells).
  std::string read_until_close(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Reads until `needle` has arrived (or the peer closes, or timeout).
  std::string read_until(std::string_view needle,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool closed() const { return closed_; }
  void close();

 private:
  int fd_ = -1;
  bool closed_ = false;
  std::string pending_;  // read past a read_until's needle
};

}  // namespace ferry::test
