#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/pipeline/runtime.h"

namespace ferry::host {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  unsigned threads = 0;                              // 0: one per core
  config::LimitsConfig limits;                       // body, headers, connections, the JSON of a body
  std::chrono::milliseconds idle_timeout{60'000};    // a kept-alive connection between requests
  std::chrono::milliseconds header_timeout{10'000};  // a request's first byte to the end of its headers
  std::chrono::milliseconds body_timeout{60'000};    // the whole body, once the headers are in
  std::chrono::milliseconds drain_timeout{30'000};
  bool access_log = true;
  // The admin listener (GET /admin/providers, /admin/pipelines, POST
  // /admin/providers/NAME/drain|enable), on its own thread.
  bool admin = true;
  std::string admin_host = "127.0.0.1";
  uint16_t admin_port = 9090;
  std::string admin_token;  // empty: no authentication
};

// The data plane: one io_context and one acceptor (SO_REUSEPORT) per worker
// thread, so a connection, its requests and their upstream connections stay
// on one thread and nothing on the request path takes a lock.
class Server {
 public:
  Server(const pipeline::Runtime& runtime, ServerOptions options);
  ~Server();

  // Binds and starts the worker threads. On failure returns false and why.
  bool start(std::string* error);
  // "127.0.0.1:8080" as bound (the real port when 0 was asked).
  std::string address() const;
  // The admin listener's address, empty when it is off.
  std::string admin_address() const;
  unsigned workers() const;
  // The connections the data plane holds at most (configured, or derived
  // from the file-descriptor limit at start()).
  size_t max_connections() const;
  // Stops accepting, closes idle connections, lets in-flight requests finish
  // (up to drain_timeout), then stops the workers. Returns the number of
  // requests still in flight when it gave up (0 = clean drain).
  size_t drain();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::host
