#include "core/plugin/plugin_library.h"

#define BOOST_DLL_USE_STD_FS
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/plugin/host_api.h"

#ifndef FERRY_BUILTIN_PLUGIN_DIR
#define FERRY_BUILTIN_PLUGIN_DIR ""
#endif

namespace ferry::plugin {

const char* kind_name(ferry_plugin_kind kind) {
  switch (kind) {
    case FERRY_KIND_PROVIDER: return "provider";
    case FERRY_KIND_ROUTER: return "router";
    case FERRY_KIND_MIDDLEWARE: return "middleware";
    case FERRY_KIND_FRONTEND: return "frontend";
    default: return "unknown";
  }
}

std::unique_ptr<ferry_plugin_handle> instance_handle(const std::string& plugin, const std::string& block,
                                                     ferry_plugin_kind kind) {
  auto h = std::make_unique<ferry_plugin_handle>();
  h->name = plugin;
  h->kind = kind;
  // The block named after its plugin keeps the plugin's own names (and the
  // state it kept before instances had names of their own).
  if (block != plugin) h->instance = block;
  h->log_name = h->instance.empty() ? plugin : plugin + "[" + block + "]";
  h->state_prefix = (h->instance.empty() ? plugin : plugin + "." + block) + ":";
  return h;
}

std::string file_name(ferry_plugin_kind kind, std::string_view name) {
  std::string n(name);
  for (auto& c : n)
    if (c == '-') c = '_';
  return std::string("ferry_") + kind_name(kind) + "_" + n + ".so";
}

std::string check_abi(uint32_t host_major, uint32_t host_minor, uint32_t plugin_major,
                      uint32_t plugin_minor) {
  auto v = [](uint32_t a, uint32_t b) { return std::to_string(a) + "." + std::to_string(b); };
  if (plugin_major != host_major)
    return "built against Ferry ABI " + v(plugin_major, plugin_minor) + ", but this ferryd speaks ABI " +
           v(host_major, host_minor) + " (majors must match; rebuild the plugin against SDK " +
           std::to_string(host_major) + ".x)";
  if (plugin_minor > host_minor)
    return "built against Ferry ABI " + v(plugin_major, plugin_minor) + ", newer than this ferryd's ABI " +
           v(host_major, host_minor) + " (upgrade ferryd or build against an older SDK)";
  return {};
}

struct PluginLibrary::Impl {
  boost::dll::shared_library lib;
};

PluginLibrary::PluginLibrary() : impl_(std::make_unique<Impl>()) {}
PluginLibrary::~PluginLibrary() = default;

namespace {

// The smallest vtable each kind had in ABI 1.0: a plugin may not report less.
constexpr size_t kMinProviderVtable = offsetof(ferry_provider_vtable, serve) + sizeof(void*);
constexpr size_t kMinRouterVtable = offsetof(ferry_router_vtable, route) + sizeof(void*);
constexpr size_t kMinMiddlewareVtable = offsetof(ferry_middleware_vtable, on_complete) + sizeof(void*);
constexpr size_t kMinInfo = offsetof(ferry_plugin_info, middleware) + sizeof(void*);

std::string validate(const ferry_plugin_info* info) {
  if (!info) return "the entry symbol returned no plugin description";
  if (info->struct_size < kMinInfo) return "ferry_plugin_info.struct_size is too small";
  if (!info->name || !*info->name) return "the plugin has no name";
  if (!info->version) return "the plugin has no version";
  switch (info->kind) {
    case FERRY_KIND_PROVIDER:
      if (!info->provider || info->provider->struct_size < kMinProviderVtable)
        return "provider vtable missing or too small";
      if (!info->provider->create || !info->provider->destroy) return "provider vtable lacks create/destroy";
      if (!info->provider->serve && !(info->provider->build_request && info->provider->parse_response))
        return "a provider needs serve, or build_request and parse_response";
      return {};
    case FERRY_KIND_ROUTER:
      if (!info->router || info->router->struct_size < kMinRouterVtable)
        return "router vtable missing or too small";
      if (!info->router->create || !info->router->destroy || !info->router->route)
        return "router vtable lacks create/destroy/route";
      return {};
    case FERRY_KIND_MIDDLEWARE:
      if (!info->middleware || info->middleware->struct_size < kMinMiddlewareVtable)
        return "middleware vtable missing or too small";
      if (!info->middleware->create || !info->middleware->destroy)
        return "middleware vtable lacks create/destroy";
      return {};
    case FERRY_KIND_FRONTEND:
      // A kind of 1.3: its description must reach the frontend member.
      if (info->struct_size < offsetof(ferry_plugin_info, frontend) + sizeof(void*) || !info->frontend ||
          info->frontend->struct_size < offsetof(ferry_frontend_vtable, encode_error) + sizeof(void*))
        return "frontend vtable missing or too small";
      if (!info->frontend->create || !info->frontend->destroy || !info->frontend->routes ||
          !info->frontend->decode || !info->frontend->encode_response || !info->frontend->encode_error)
        return "frontend vtable lacks create/destroy/routes/decode/encode_response/encode_error";
      return {};
    default: return "unknown plugin kind " + std::to_string(info->kind);
  }
}

}  // namespace

std::shared_ptr<PluginLibrary> PluginLibrary::load(const std::string& path, std::string* error) {
  auto fail = [&](const std::string& why) -> std::shared_ptr<PluginLibrary> {
    if (error) *error = "plugin " + path + ": " + why;
    return nullptr;
  };
  std::shared_ptr<PluginLibrary> p(new PluginLibrary());
  try {
    p->impl_->lib.load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return fail(std::string("cannot load: ") + e.what());
  }
  if (!p->impl_->lib.has(FERRY_ENTRY_SYMBOL))
    return fail(std::string("not a Ferry plugin: it does not export ") + FERRY_ENTRY_SYMBOL +
                " (build it with the SDK's export macro)");
  auto negotiate = p->impl_->lib.get<ferry_status(ferry_negotiation*)>(FERRY_ENTRY_SYMBOL);

  p->handle_.path = path;
  ferry_negotiation n{};
  n.struct_size = sizeof n;
  n.host_abi_major = FERRY_ABI_MAJOR;
  n.host_abi_minor = FERRY_ABI_MINOR;
  n.host = host_api();
  n.self = &p->handle_;
  ferry_status st = negotiate(&n);
  std::string abi = check_abi(FERRY_ABI_MAJOR, FERRY_ABI_MINOR, n.plugin_abi_major, n.plugin_abi_minor);
  if (!abi.empty()) return fail(abi);
  if (st != FERRY_OK) return fail("refused this host during negotiation (status " + std::to_string(st) + ")");
  if (auto why = validate(n.plugin); !why.empty()) return fail(why);
  p->info_ = n.plugin;
  p->abi_major_ = n.plugin_abi_major;
  p->abi_minor_ = n.plugin_abi_minor;
  p->handle_.name = n.plugin->name;
  p->handle_.kind = n.plugin->kind;
  p->handle_.log_name = p->handle_.name;
  p->handle_.state_prefix = p->handle_.name + ":";
  return p;
}

std::vector<std::string> Registry::default_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("FERRY_PLUGIN_PATH")) {
    std::string_view rest = env;
    while (!rest.empty()) {
      auto colon = rest.find(':');
      if (colon) dirs.emplace_back(rest.substr(0, colon));
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  std::error_code ec;
  auto exe_dir = boost::dll::program_location(ec).parent_path();
  if (!ec) {
    dirs.push_back((exe_dir / "plugins").string());
    dirs.push_back((exe_dir.parent_path() / "lib" / "ferry" / "plugins").string());
  }
  if (*FERRY_BUILTIN_PLUGIN_DIR) dirs.emplace_back(FERRY_BUILTIN_PLUGIN_DIR);
  return dirs;
}

std::shared_ptr<PluginLibrary> Registry::find(ferry_plugin_kind kind, const std::string& name,
                                              std::string* error) {
  std::string path;
  namespace fs = std::filesystem;
  if (name.find('/') != std::string::npos) {
    path = name;
    if (!fs::exists(path)) {
      if (error) *error = kind_name(kind) + std::string(" plugin file ") + name + " does not exist";
      return nullptr;
    }
  } else {
    std::string file = file_name(kind, name);
    for (const auto& d : dirs_) {
      fs::path candidate = fs::path(d) / file;
      if (fs::exists(candidate)) {
        path = candidate.lexically_normal().string();
        break;
      }
    }
    if (path.empty()) {
      if (error) {
        std::string searched;
        for (const auto& d : dirs_) searched += (searched.empty() ? "" : ", ") + d;
        *error = std::string(kind_name(kind)) + " plugin '" + name + "' not found (looked for " + file +
                 " in " + (searched.empty() ? "no directories" : searched) + ")";
      }
      return nullptr;
    }
  }
  for (const auto& lib : loaded_)
    if (lib->path() == path) {
      if (lib->kind() != kind) {
        if (error)
          *error = path + " is a " + kind_name(lib->kind()) + " plugin, not a " + kind_name(kind) + " plugin";
        return nullptr;
      }
      return lib;
    }
  auto lib = PluginLibrary::load(path, error);
  if (!lib) return nullptr;
  if (lib->kind() != kind) {
    if (error)
      *error = path + " is a " + kind_name(lib->kind()) + " plugin, not a " + kind_name(kind) + " plugin";
    return nullptr;
  }
  loaded_.push_back(lib);
  return lib;
}

}  // namespace ferry::plugin
