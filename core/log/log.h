#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace ferry::log {

// Sets up the process logger on stderr. Asynchronous: a worker thread only
// queues the line, a background thread writes it, and when the queue is full
// the oldest line is dropped rather than blocking a request.
void init(spdlog::level::level_enum level);
std::optional<spdlog::level::level_enum> parse_level(std::string_view name);

// The process logger (a synchronous stderr logger until init() ran).
spdlog::logger& get();
// Lifecycle lines (ready, draining, exiting) that supervisors and scripts wait
// for: written whatever the configured level, through the same queue.
spdlog::logger& lifecycle();
// Flushes and stops the background thread; call before exit.
void shutdown();

// The completion handler every co_spawn gets (never asio::detached, which
// drops an exception unseen): one that escaped the coroutine is logged with
// what the coroutine was doing, e.g. "[<request id>] internal call".
struct LogIfFailed {
  std::string what;
  void operator()(std::exception_ptr e) const;
};

}  // namespace ferry::log
