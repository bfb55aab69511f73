#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>

#include "core/pipeline/runtime.h"

namespace ferry::host {

// The daemon's own life, as /health and /v1/models report it.
struct ServerState {
  std::atomic<bool> draining{false};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  int64_t started_unix = static_cast<int64_t>(std::time(nullptr));
};

// The listener's live counts, for /metrics.
struct Traffic {
  size_t open_connections = 0;
  size_t active_requests = 0;
  uint64_t upstream_connections_opened = 0;
  uint64_t upstream_connections_reused = 0;
};

// The gateway's status as plain functions of the runtime: no sockets, so
// each view is tested on its own. The JSON shapes are an API: operators'
// dashboards and the tests read them.

// GET /health (data plane and admin listener).
std::string health_json(const pipeline::Runtime& runtime, const ServerState& state);
// GET /admin/providers.
std::string admin_providers_json(const pipeline::Runtime& runtime);
// GET /admin/pipelines.
std::string admin_pipelines_json(const pipeline::Runtime& runtime);
// The models a frontend exposes, as an OpenAI model list (its encoder turns
// it into its dialect's); `created` is the daemon's start.
std::string models_json(const pipeline::Runtime& runtime, const pipeline::Frontend& frontend,
                        int64_t created);
// GET /metrics: sets the gauges that are sampled rather than counted, then
// renders the whole registry.
std::string metrics_text(const pipeline::Runtime& runtime, const Traffic& traffic);

}  // namespace ferry::host
