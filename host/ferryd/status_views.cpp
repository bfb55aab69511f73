#include "host/ferryd/status_views.h"

#include <ferry/version.h>

#include "core/json/doc.h"
#include "core/metrics/metrics.h"
#include "core/plugin/host_api.h"
#include "core/state/store.h"

namespace ferry::host {
namespace {

using json::Value;

// Healthy: not failing its probes, and no model of the provider has an open circuit.
bool healthy(const pipeline::Provider& p) {
  if (p.health->probe_failing()) return false;
  for (const auto& [model, m] : p.models->all())
    if (m->breaker.state() != resilience::Breaker::State::kClosed) return false;
  return true;
}

Value models(const pipeline::Provider& p) {
  Value out = Value::object();
  for (const auto& [model, m] : p.models->all())
    out[model] = {{"state", resilience::Breaker::name(m->breaker.state())},
                  {"error_rate", m->breaker.error_rate()},
                  {"latency_ewma_ms", m->latency_ewma_us.load() / 1000.0},
                  {"ttfb_ewma_ms", m->ttfb_ewma_us.load() / 1000.0}};
  return out;
}

Value health_check_json(const pipeline::Provider& p) {
  if (!p.health_check.enabled) return "off";
  auto probes = p.health->probes();
  const char* state = probes.count == 0 ? "pending" : probes.failing ? "unhealthy" : "healthy";
  Value v = {{"state", state}, {"probes", probes.count}};
  if (!probes.last_error.empty()) v["last_error"] = probes.last_error;
  return v;
}

Value state_json() {
  const state::Store* store = plugin::state_store();
  if (!store) return nullptr;
  return {{"backend", store->backend()}, {"available", store->available()}};
}

}  // namespace

std::string health_json(const pipeline::Runtime& runtime, const ServerState& state) {
  Value providers = Value::array();
  for (const auto& p : runtime.providers()) {
    const auto& s = p->stats;
    providers.push_back({{"name", p->name},
                         {"plugin", p->plugin->library().name()},
                         {"healthy", healthy(*p)},
                         {"models", models(*p)},
                         {"in_flight", s.in_flight.load()},
                         {"attempts", s.attempts.load()},
                         {"failures", s.failures.load()},
                         {"error_rate", s.error_rate_ppm.load() / 1e6},
                         {"latency_ewma_ms", s.latency_ewma_us.load() / 1000.0},
                         {"ttfb_ewma_ms", s.ttfb_ewma_us.load() / 1000.0}});
  }
  Value pipelines = Value::array();
  for (const auto& p : runtime.pipelines()) pipelines.push_back({{"name", p->name}, {"models", p->models}});
  auto uptime =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - state.started);
  return json::dump(Value{{"status", state.draining.load() ? "draining" : "ok"},
                          {"version", FERRY_SDK_VERSION_STRING},
                          {"abi", std::to_string(FERRY_ABI_MAJOR) + "." + std::to_string(FERRY_ABI_MINOR)},
                          {"uptime_s", uptime.count()},
                          {"providers", std::move(providers)},
                          {"pipelines", std::move(pipelines)},
                          {"state", state_json()}});
}

std::string admin_providers_json(const pipeline::Runtime& runtime) {
  Value out = Value::array();
  for (const auto& p : runtime.providers()) {
    const auto& s = p->stats;
    out.push_back({{"name", p->name},
                   {"plugin", p->plugin->library().name()},
                   {"drained", p->health->drained()},
                   {"healthy", healthy(*p)},
                   {"in_flight", s.in_flight.load()},
                   {"attempts", s.attempts.load()},
                   {"failures", s.failures.load()},
                   {"error_rate", s.error_rate_ppm.load() / 1e6},
                   {"latency_p50_ms", s.latency.quantile(0.5) / 1000.0},
                   {"latency_p95_ms", s.latency.quantile(0.95) / 1000.0},
                   {"ttfb_ewma_ms", s.ttfb_ewma_us.load() / 1000.0},
                   {"health_check", health_check_json(*p)},
                   {"models", models(*p)}});
  }
  return json::dump(Value{{"providers", std::move(out)}});
}

std::string admin_pipelines_json(const pipeline::Runtime& runtime) {
  Value out = Value::array();
  for (const auto& pl : runtime.pipelines()) {
    Value providers = Value::array();
    for (const auto* p : pl->providers) providers.push_back(p->name);
    Value middleware = Value::array();
    for (const auto* m : pl->middleware) middleware.push_back(m->name);
    Value on_error = Value::object();
    for (size_t i = 0; i < resilience::kErrorClasses; ++i) {
      auto cls = static_cast<resilience::ErrorClass>(i);
      on_error[resilience::name(cls)] = resilience::name(pl->policy.action(cls));
    }
    const auto& pol = pl->policy;
    out.push_back({{"name", pl->name},
                   {"models", pl->models},
                   {"providers", std::move(providers)},
                   {"router", pl->router_name},
                   {"middleware", std::move(middleware)},
                   {"retry",
                    {{"max_retries", pol.max_retries},
                     {"backoff_base_ms", pol.backoff_base.count()},
                     {"backoff_max_ms", pol.backoff_max.count()},
                     {"max_retry_after_ms", pol.max_retry_after.count()},
                     {"deadline_ms", pol.deadline.count()}}},
                   {"on_error", std::move(on_error)}});
  }
  return json::dump(Value{{"pipelines", std::move(out)}});
}

std::string models_json(const pipeline::Runtime& runtime, const pipeline::Frontend& frontend,
                        int64_t created) {
  Value data = Value::array();
  for (const auto& p : runtime.pipelines())
    for (const auto& m : p->models)
      // A pattern is not a model name.
      if (m.find_first_of("*?[") == std::string::npos && frontend.exposes(m))
        data.push_back(
            {{"id", m}, {"object", "model"}, {"created", created}, {"owned_by", "ferry:" + p->name}});
  return json::dump(Value{{"object", "list"}, {"data", std::move(data)}});
}

std::string metrics_text(const pipeline::Runtime& runtime, const Traffic& traffic) {
  auto& m = metrics::Registry::global();
  m.set("ferry_open_connections", static_cast<double>(traffic.open_connections));
  m.set("ferry_active_requests", static_cast<double>(traffic.active_requests));
  m.set("ferry_upstream_connections_opened", static_cast<double>(traffic.upstream_connections_opened));
  m.set("ferry_upstream_connections_reused", static_cast<double>(traffic.upstream_connections_reused));
  for (const auto& p : runtime.providers())
    m.set("ferry_provider_in_flight{provider=\"" + p->name + "\"}", p->stats.in_flight.load());
  return m.render();
}

}  // namespace ferry::host
