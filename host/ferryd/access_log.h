#pragma once

#include <chrono>
#include <string_view>

#include "core/pipeline/engine.h"
#include "core/pipeline/request_context.h"

namespace ferry::host {

// What is written about each request once it is answered: its access-log
// line and its request metrics. The log format is pinned by tests and read
// by operators' tools; change it only on purpose.
class AccessLog {
 public:
  explicit AccessLog(bool enabled) : enabled_(enabled) {}

  // A request served on a frontend's route, with its outcome. Records the
  // request metrics whether or not the log is on.
  void served(const pipeline::RequestContext& ctx, std::string_view method, std::string_view path,
              std::string_view frontend, const pipeline::Outcome& o, std::chrono::microseconds latency) const;
  // A request answered before any route took it (unreadable, unknown URL,
  // method not allowed).
  void refused(std::string_view id, std::string_view method, std::string_view path, int status) const;
  // A request to the admin listener.
  void admin(std::string_view id, std::string_view method, std::string_view target, int status) const;

 private:
  static void record_metrics(const pipeline::Outcome& o, std::chrono::microseconds latency);
  bool enabled_;
};

}  // namespace ferry::host
