#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <ferry/ferry.h>

#include "core/config/config.h"
#include "core/http/upstream_client.h"
#include "core/json/doc.h"
#include "core/pipeline/route_table.h"
#include "core/plugin/plugin_library.h"
#include "core/resilience/breaker.h"
#include "core/resilience/latency.h"
#include "core/resilience/policy.h"
#include "core/resilience/provider_health.h"

namespace ferry::pipeline {

// Live numbers about a provider, shared by all worker threads.
struct ProviderStats {
  std::atomic<uint32_t> in_flight{0};
  std::atomic<uint64_t> latency_ewma_us{0};
  std::atomic<uint64_t> ttfb_ewma_us{0};
  std::atomic<uint64_t> attempts{0};
  std::atomic<uint64_t> failures{0};
  // Smoothed failure fraction, in millionths (atomics of double are slow to CAS).
  std::atomic<uint32_t> error_rate_ppm{0};

  resilience::LatencyWindow latency;  // p50/p95 for the admin API

  void record(bool ok, uint64_t latency_us);
  void record_ttfb(uint64_t ttfb_us);
};

// What a provider knows about one model it serves: the model's own circuit
// breaker and latencies, so a slow or failing model does not drag down the
// provider's other models in routing.
struct ModelState {
  explicit ModelState(const resilience::BreakerConfig& config) : breaker(config) {}
  resilience::Breaker breaker;
  std::atomic<uint64_t> latency_ewma_us{0};  // successful attempts, whole answer
  std::atomic<uint64_t> ttfb_ewma_us{0};
};

// The ModelStates of a provider, made on first use of each model.
class ModelStates {
 public:
  explicit ModelStates(resilience::BreakerConfig config) : config_(config) {}
  ModelState& for_model(std::string_view model);
  // Every model's state, for /health and the admin API.
  std::vector<std::pair<std::string, const ModelState*>> all() const;
  const resilience::BreakerConfig& config() const { return config_; }

 private:
  resilience::BreakerConfig config_;
  mutable std::shared_mutex mu_;
  std::map<std::string, std::unique_ptr<ModelState>, std::less<>> by_model_;
};

// Exponentially weighted, alpha = 1/8. Concurrent updates may lose one sample,
// which only delays the smoothing.
inline void ewma(std::atomic<uint64_t>& avg, uint64_t sample) {
  uint64_t old = avg.load(std::memory_order_relaxed);
  avg.store(old == 0 ? sample : old - old / 8 + sample / 8, std::memory_order_relaxed);
}

// A plugin instance: one configured block, with the plugin's vtable copied into
// a host-sized struct so that members a 1.0 plugin does not have read as NULL.
template <class Vtable>
class Instance {
 public:
  Instance(std::shared_ptr<plugin::PluginLibrary> lib, const Vtable& vt, ferry_instance* instance,
           std::unique_ptr<ferry_plugin_handle> self)
      : lib_(std::move(lib)), self_(std::move(self)), instance_(instance) {
    std::memcpy(&vt_, &vt, std::min(vt.struct_size, sizeof vt_));
  }
  ~Instance() {
    if (vt_.destroy && instance_) vt_.destroy(instance_);
  }
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  const Vtable& vt() const { return vt_; }
  ferry_instance* instance() const { return instance_; }
  plugin::PluginLibrary& library() const { return *lib_; }

 private:
  std::shared_ptr<plugin::PluginLibrary> lib_;
  // Its own identity (ABI 1.3 instance_self): the plugin may hold it as long
  // as the instance, so it is destroyed after `destroy` ran.
  std::unique_ptr<ferry_plugin_handle> self_;
  Vtable vt_{};
  ferry_instance* instance_;
};

struct Provider {
  std::string name;
  http::UpstreamOptions upstream;
  bool stream_usage = true;
  // Client model name -> this provider's name for it ("fast" -> "llama-3.1-8b-instant").
  std::map<std::string, std::string, std::less<>> model_map;
  json::Doc attributes;  // read-only after build; shared by all workers through ferry_candidate
  std::unique_ptr<ModelStates> models;
  // Active health checks (off unless configured): failing probes take the
  // provider out of routing like an open circuit.
  config::HealthCheckConfig health_check;
  // Run-time state, not configuration: drained by an operator (admin API),
  // failing its probes (resilience::HealthChecker). A separate object so
  // that nothing in the Provider itself changes once built.
  std::unique_ptr<resilience::ProviderHealth> health = std::make_unique<resilience::ProviderHealth>();
  bool available() const { return health->available(); }
  std::unique_ptr<Instance<ferry_provider_vtable>> plugin;
  mutable ProviderStats stats;
  bool serves() const { return plugin->vt().serve != nullptr; }
};

struct Middleware {
  std::string name;
  std::unique_ptr<Instance<ferry_middleware_vtable>> plugin;
};

// A front door (ABI 1.3): one client dialect, serving the routes it claims.
struct Frontend {
  std::string name;
  std::vector<std::string> models;  // globs it exposes; empty: every model
  std::unique_ptr<Instance<ferry_frontend_vtable>> plugin;
  std::vector<ferry_route> routes;  // the plugin's, copied into host-sized structs
  // Whether this door may serve `model` ([frontends.NAME] models).
  bool exposes(std::string_view model) const;
};

struct Pipeline {
  std::string name;
  std::vector<std::string> models;
  std::vector<const Provider*> providers;
  std::string router_name;
  std::unique_ptr<Instance<ferry_router_vtable>> router;
  std::vector<const Middleware*> middleware;
  resilience::Policy policy;
};

// Everything built from a config: loaded plugins and their instances.
// Immutable once built; shared by all workers.
class Runtime {
 public:
  // Loads the plugins the config names and creates their instances. On any
  // problem returns null and fills `errors` (file:line:col each).
  static std::unique_ptr<Runtime> build(std::shared_ptr<const config::Config> config,
                                        std::vector<config::Diagnostic>& errors);
  ~Runtime();

  // The pipeline serving `model`: an exact name first, then the first glob
  // pattern ('*', '?', '[...]') that matches.
  const Pipeline* pipeline_for_model(std::string_view model) const;
  const std::vector<std::unique_ptr<Pipeline>>& pipelines() const { return pipelines_; }
  const std::vector<std::unique_ptr<Provider>>& providers() const { return providers_; }
  const std::vector<std::unique_ptr<Middleware>>& middleware() const { return middleware_; }
  const std::vector<std::unique_ptr<Frontend>>& frontends() const { return frontends_; }
  const RouteTable& routes() const { return routes_; }
  const config::Config& config() const { return *config_; }

  // An event: logged, and given to every middleware with on_event (ABI 1.1).
  struct Event {
    ferry_event_type type;
    std::string_view provider;
    std::string_view to_provider = {};
    std::string_view model = {};
    std::string_view pipeline = {};
    std::string_view request_id = {};
    std::string_view detail = {};
  };
  void emit(const Event& event) const;
  static const char* event_name(ferry_event_type type);

 private:
  explicit Runtime(std::vector<std::string> dirs) : registry_(std::move(dirs)) {}
  void build_frontends(std::vector<config::Diagnostic>& errors);
  static void warn_unauthenticated_key_limits(const config::Config& cfg, const config::PipelineConfig& pc,
                                              const Pipeline& pl);

  plugin::Registry registry_;  // declared first: libraries outlive the instances below
  std::shared_ptr<const config::Config> config_;
  std::vector<std::unique_ptr<Provider>> providers_;
  std::vector<std::unique_ptr<Middleware>> middleware_;
  std::vector<std::unique_ptr<Pipeline>> pipelines_;
  std::vector<std::unique_ptr<Frontend>> frontends_;
  RouteTable routes_;
  std::unordered_map<std::string, const Pipeline*> by_model_;
  // Patterns such as "claude-*", tried in config order after the exact names.
  std::vector<std::pair<std::string, const Pipeline*>> by_pattern_;
};

}  // namespace ferry::pipeline
