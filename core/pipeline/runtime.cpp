#include "core/pipeline/runtime.h"

#include <fnmatch.h>

#include <chrono>

#include "core/json/doc.h"
#include "core/log/log.h"
#include "core/plugin/host_api.h"

namespace ferry::pipeline {

void ProviderStats::record_ttfb(uint64_t ttfb_us) { ewma(ttfb_ewma_us, ttfb_us); }

ModelState& ModelStates::for_model(std::string_view model) {
  {
    std::shared_lock lock(mu_);
    auto it = by_model_.find(model);
    if (it != by_model_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  auto& slot = by_model_[std::string(model)];
  if (!slot) slot = std::make_unique<ModelState>(config_);
  return *slot;
}

std::vector<std::pair<std::string, const ModelState*>> ModelStates::all() const {
  std::shared_lock lock(mu_);
  std::vector<std::pair<std::string, const ModelState*>> out;
  for (const auto& [model, b] : by_model_) out.emplace_back(model, b.get());
  return out;
}

void ProviderStats::record(bool ok, uint64_t latency_us) {
  attempts.fetch_add(1, std::memory_order_relaxed);
  if (ok) {
    ewma(latency_ewma_us, latency_us);
    latency.record(latency_us);
  } else
    failures.fetch_add(1, std::memory_order_relaxed);
  uint32_t rate = error_rate_ppm.load(std::memory_order_relaxed);
  uint32_t sample = ok ? 0 : 1'000'000;
  error_rate_ppm.store(rate - rate / 16 + sample / 16, std::memory_order_relaxed);
}

namespace {

template <class Vtable>
std::unique_ptr<Instance<Vtable>> create_instance(plugin::Registry& registry, ferry_plugin_kind kind,
                                                  const config::PluginBlock& block,
                                                  const Vtable* ferry_plugin_info::*field,
                                                  std::vector<config::Diagnostic>& errors) {
  std::string err;
  auto lib = registry.find(kind, block.plugin, &err);
  if (!lib) {
    errors.push_back({block.pos, block.title + ": " + err});
    return nullptr;
  }
  const Vtable* vt = lib->info().*field;
  json::Value values = block.options;
  // "$" keys carry the host's context (ABI 1.1, R12): a 1.0 plugin would
  // take them for unknown options.
  if (lib->abi_minor() < 1)
    for (auto it = values.begin(); it != values.end();)
      it = it.key().starts_with('$') ? values.erase(it) : ++it;
  json::Doc options = json::Doc::from_value(std::move(values));
  ferry_instance* instance = nullptr;
  size_t before = errors.size();
  ferry_status st;
  auto self = plugin::instance_handle(lib->name(), block.name, kind);
  {
    plugin::ConfigErrorScope scope(plugin::handle(&options), block, errors, self.get());
    st = vt->create(plugin::handle(&options), &instance);
  }
  if (st != FERRY_OK || errors.size() != before) {
    if (instance) vt->destroy(instance);
    if (errors.size() == before)
      errors.push_back({block.pos, block.title + ": plugin '" + lib->name() +
                                       "' refused its configuration (status " + std::to_string(st) + ")"});
    return nullptr;
  }
  return std::make_unique<Instance<Vtable>>(std::move(lib), *vt, instance, std::move(self));
}

}  // namespace

Runtime::~Runtime() {
  // Instances go before the registry unloads their libraries.
  frontends_.clear();
  pipelines_.clear();
  middleware_.clear();
  providers_.clear();
}

namespace {

// Whether a middleware block's options count anything "per key".
bool counts_per_key(const json::Value& v) {
  if (v.is_object()) {
    if (auto per = v.find("per"); per != v.end() && per->is_string() && per->get<std::string>() == "key")
      return true;
    for (const auto& [k, child] : v.items())
      if (counts_per_key(child)) return true;
  } else if (v.is_array()) {
    for (const auto& child : v)
      if (counts_per_key(child)) return true;
  }
  return false;
}

}  // namespace

// A per-key limit or budget with no auth plugin before it counts by the
// client's own Authorization header, which a client rotates at will: say so
// at start, where the operator sees it, rather than let it look enforced.
void Runtime::warn_unauthenticated_key_limits(const config::Config& cfg, const config::PipelineConfig& pc,
                                              const Pipeline& pl) {
  bool authenticated = false;
  for (size_t i = 0; i < pl.middleware.size(); ++i) {
    const std::string& plugin = pl.middleware[i]->plugin->library().name();
    if (plugin == "auth") authenticated = true;
    if (authenticated || (plugin != "rate-limit" && plugin != "budget")) continue;
    const config::PluginBlock* block = cfg.middleware_block(pl.middleware[i]->name);
    if (!block || !counts_per_key(block->options)) continue;
    log::get().warn(
        "[pipelines.{}] middleware '{}' ({}) limits per key, but no auth plugin runs before it: without "
        "one a key is a hash of the client's Authorization header, and a client that changes the header "
        "escapes the limit. Put \"auth\" first in the pipeline's middleware (see "
        "plugins/middleware/rate_limit/README.md).",
        pc.name, pl.middleware[i]->name, plugin);
  }
}

std::unique_ptr<Runtime> Runtime::build(std::shared_ptr<const config::Config> cfg,
                                        std::vector<config::Diagnostic>& errors) {
  std::vector<std::string> dirs = cfg->plugin_dirs;
  for (auto& d : plugin::Registry::default_dirs()) dirs.push_back(std::move(d));
  std::unique_ptr<Runtime> rt(new Runtime(std::move(dirs)));
  rt->config_ = cfg;
  size_t before = errors.size();

  for (const auto& pc : cfg->providers) {
    auto p = std::make_unique<Provider>();
    p->name = pc.block.name;
    p->upstream.connect = std::chrono::milliseconds(pc.connect_timeout_ms);
    p->upstream.read = std::chrono::milliseconds(pc.read_timeout_ms);
    p->upstream.total = std::chrono::milliseconds(pc.timeout_ms);
    p->upstream.ca_file = pc.ca_file;
    p->stream_usage = pc.stream_usage;
    p->model_map = pc.model_map;
    p->models = std::make_unique<ModelStates>(pc.breaker);
    p->attributes = json::Doc::from_value(pc.attributes);
    p->attributes.freeze();
    p->plugin =
        create_instance(rt->registry_, FERRY_KIND_PROVIDER, pc.block, &ferry_plugin_info::provider, errors);
    p->health_check = pc.health_check;
    if (p->plugin && p->health_check.enabled && !p->plugin->vt().build_probe)
      errors.push_back(
          {pc.health_check_pos, "health_check in " + pc.block.title + ": provider plugin '" +
                                    p->plugin->library().name() +
                                    "' has no health probe (build_probe), so it cannot be checked"});
    if (p->plugin) rt->providers_.push_back(std::move(p));
  }

  auto find_provider = [&](std::string_view name) -> const Provider* {
    for (const auto& p : rt->providers_)
      if (p->name == name) return p.get();
    return nullptr;
  };
  auto find_middleware = [&](std::string_view name) -> const Middleware* {
    for (const auto& m : rt->middleware_)
      if (m->name == name) return m.get();
    return nullptr;
  };

  for (const auto& pc : cfg->pipelines) {
    auto pl = std::make_unique<Pipeline>();
    pl->name = pc.name;
    pl->models = pc.models;
    pl->policy = pc.policy;
    for (const auto& name : pc.providers)
      if (auto p = find_provider(name)) pl->providers.push_back(p);
    pl->router_name = pc.router.plugin;
    config::PluginBlock router_block = pc.router;
    json::Value& context = router_block.options["$pipeline"];
    context["name"] = pc.name;
    context["providers"] = pc.providers;
    pl->router =
        create_instance(rt->registry_, FERRY_KIND_ROUTER, router_block, &ferry_plugin_info::router, errors);
    for (size_t i = 0; i < pc.middleware.size(); ++i) {
      const auto& name = pc.middleware[i];
      const Middleware* m = find_middleware(name);
      if (!m) {
        // A middleware named in a pipeline without its own [middleware.NAME]
        // table is that plugin with default options.
        config::PluginBlock implicit;
        const config::PluginBlock* block = cfg->middleware_block(name);
        if (!block) {
          implicit.name = implicit.plugin = name;
          implicit.title = "middleware '" + name + "' of [pipelines." + pc.name + "]";
          implicit.pos = pc.middleware_pos[i];
          block = &implicit;
        }
        auto mw = std::make_unique<Middleware>();
        mw->name = name;
        mw->plugin = create_instance(rt->registry_, FERRY_KIND_MIDDLEWARE, *block,
                                     &ferry_plugin_info::middleware, errors);
        if (!mw->plugin) continue;
        m = mw.get();
        rt->middleware_.push_back(std::move(mw));
      }
      pl->middleware.push_back(m);
    }
    warn_unauthenticated_key_limits(*cfg, pc, *pl);
    for (const auto& model : pl->models) {
      if (model.find_first_of("*?[") != std::string::npos)
        rt->by_pattern_.emplace_back(model, pl.get());
      else
        rt->by_model_[model] = pl.get();
    }
    rt->pipelines_.push_back(std::move(pl));
  }

  rt->build_frontends(errors);
  if (errors.size() != before) return nullptr;
  return rt;
}

bool Frontend::exposes(std::string_view model) const {
  if (models.empty()) return true;
  std::string name(model);
  for (const auto& pattern : models)
    if (::fnmatch(pattern.c_str(), name.c_str(), 0) == 0) return true;
  return false;
}

void Runtime::build_frontends(std::vector<config::Diagnostic>& errors) {
  std::vector<config::FrontendConfig> blocks = config_->frontends;
  if (blocks.empty()) {
    // No [frontends]: OpenAI and Anthropic clients are both served.
    for (const char* name : {"openai", "anthropic"}) {
      config::FrontendConfig f;
      f.block.name = f.block.plugin = name;
      f.block.title = std::string("the default frontend '") + name + "'";
      f.block.pos = {config_->path, 1, 1};
      blocks.push_back(std::move(f));
    }
  }
  for (const auto& fc : blocks) {
    auto f = std::make_unique<Frontend>();
    f->name = fc.block.name;
    f->models = fc.models;
    f->plugin =
        create_instance(registry_, FERRY_KIND_FRONTEND, fc.block, &ferry_plugin_info::frontend, errors);
    if (!f->plugin) continue;
    const auto& vt = f->plugin->vt();
    const ferry_route* routes = nullptr;
    size_t count = 0;
    if (!vt.routes || !vt.decode || vt.routes(f->plugin->instance(), &routes, &count) != FERRY_OK ||
        (count && !routes)) {
      errors.push_back({fc.block.pos, fc.block.title + ": frontend plugin '" + f->plugin->library().name() +
                                          "' did not list its routes"});
      continue;
    }
    for (size_t i = 0; i < count; ++i) {
      ferry_route r{};
      std::memcpy(&r, &routes[i], std::min(routes[i].struct_size, sizeof r));
      if (!r.method || !r.path || r.path[0] != '/') {
        errors.push_back({fc.block.pos, fc.block.title + ": route " + std::to_string(i) +
                                            " has no method or no absolute path"});
        continue;
      }
      f->routes.push_back(r);
    }
    for (size_t i = 0; i < f->routes.size(); ++i) {
      const ferry_route& r = f->routes[i];
      std::string clash = routes_.add({r.method, r.path, r.header ? r.header : "", f.get(), i});
      if (!clash.empty()) errors.push_back({fc.block.pos, fc.block.title + ": " + clash});
    }
    frontends_.push_back(std::move(f));
  }
}

const char* Runtime::event_name(ferry_event_type type) {
  switch (type) {
    case FERRY_EVENT_PROVIDER_FAILED: return "provider_failed";
    case FERRY_EVENT_PROVIDER_SWITCHED: return "provider_switched";
    case FERRY_EVENT_BREAKER_OPENED: return "breaker_opened";
    case FERRY_EVENT_BREAKER_CLOSED: return "breaker_closed";
    case FERRY_EVENT_HEALTH_CHANGED: return "health_changed";
    default: return "unknown";
  }
}

void Runtime::emit(const Event& e) const {
  std::string_view name = event_name(e.type);
  std::string line = "event=" + std::string(name) + " provider=" + std::string(e.provider);
  auto add = [&](const char* key, std::string_view value) {
    if (!value.empty()) line.append(" ").append(key).append("=").append(value);
  };
  add("to", e.to_provider);
  add("model", e.model);
  add("pipeline", e.pipeline);
  add("request_id", e.request_id);
  if (!e.detail.empty()) line.append(" detail=").append(json::dump(json::Value(e.detail)));
  bool quiet = e.type == FERRY_EVENT_PROVIDER_FAILED || e.type == FERRY_EVENT_PROVIDER_SWITCHED;
  log::get().log(quiet ? spdlog::level::info : spdlog::level::warn, "{}", line);

  auto fv = [](std::string_view s) { return ferry_view{s.data(), s.size()}; };
  ferry_event ev{sizeof(ferry_event),
                 e.type,
                 fv(name),
                 fv(e.provider),
                 fv(e.to_provider),
                 fv(e.model),
                 fv(e.pipeline),
                 fv(e.request_id),
                 fv(e.detail),
                 static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count())};
  for (const auto& m : middleware_)
    if (m->plugin->vt().on_event) m->plugin->vt().on_event(m->plugin->instance(), &ev);
}

const Pipeline* Runtime::pipeline_for_model(std::string_view model) const {
  auto it = by_model_.find(std::string(model));
  if (it != by_model_.end()) return it->second;
  std::string name(model);
  for (const auto& [pattern, pipeline] : by_pattern_)
    if (::fnmatch(pattern.c_str(), name.c_str(), 0) == 0) return pipeline;
  return nullptr;
}

}  // namespace ferry::pipeline
