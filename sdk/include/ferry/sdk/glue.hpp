// ferry/sdk/glue.hpp - ABI glue: trampolines that catch every exception, vtable builders that export only
// overridden hooks, negotiation. Part of the C++ wrapper; include <ferry/plugin.hpp>, which includes every
// part in order.
#ifndef FERRY_SDK_GLUE_HPP
#define FERRY_SDK_GLUE_HPP

#ifndef FERRY_PLUGIN_HPP
#error "include <ferry/plugin.hpp>"
#endif

namespace ferry::sdk {

namespace detail {

template <class F>
ferry_status guarded(const char* what, F&& f) noexcept {
  try {
    return static_cast<ferry_status>(f());
  } catch (const std::exception& e) {
    if (g_host) sdk::log(LogLevel::kError, std::string(what) + " threw: " + e.what());
  } catch (...) {
    if (g_host) sdk::log(LogLevel::kError, std::string(what) + " threw a non-standard exception");
  }
  return FERRY_ERR_INTERNAL;
}

template <class T>
T* self(ferry_instance* i) {
  return reinterpret_cast<T*>(i);
}

// guarded(), with the instance `i` (created as a B) current while it runs.
template <class B, class F>
ferry_status guarded_as(ferry_instance* i, const char* what, F&& f) noexcept {
  SelfScope scope(static_cast<Identity*>(self<B>(i))->instance_handle());
  return guarded(what, std::forward<F>(f));
}

// The instance's own handle (ABI 1.3), or the library's from an older host.
inline ferry_plugin_handle* instance_self(const ferry_json* config) {
  if (g_host->struct_size <= offsetof(ferry_host_api, instance_self) || !g_host->instance_self) return g_self;
  ferry_plugin_handle* h = g_host->instance_self(config);
  return h ? h : g_self;
}

template <class T, class Base>
ferry_status create(const ferry_json* config, ferry_instance** out) noexcept {
  *out = nullptr;
  Config cfg(config);
  ferry_plugin_handle* me = instance_self(config);
  SelfScope scope(me);  // what the constructor logs or stores is the instance's too
  try {
    auto obj = std::make_unique<T>(cfg);
    if (cfg.failed()) return FERRY_ERR_CONFIG;
    static_cast<Identity&>(*obj).handle_ = me;
    *out = reinterpret_cast<ferry_instance*>(static_cast<Base*>(obj.release()));
    return FERRY_OK;
  } catch (const ConfigError& e) {
    cfg.error(e.pointer, e.what());
  } catch (const std::exception& e) {
    cfg.error("", e.what());
  } catch (...) {
    cfg.error("", "plugin constructor threw a non-standard exception");
  }
  return FERRY_ERR_CONFIG;
}

template <class B>
void destroy(ferry_instance* i) noexcept {
  delete self<B>(i);
}

inline HttpResponse to_response(const ferry_http_response* r) {
  return HttpResponse{r->status, sv(r->body), Json(r->json), r->headers};
}

struct ProviderGlue {
  static ferry_status build_request(ferry_instance* i, ferry_ctx* c, const ferry_json* req,
                                    ferry_upstream* up) noexcept {
    return guarded_as<Provider>(i, "build_request", [&] {
      Context ctx(c);
      Upstream u(up);
      return self<Provider>(i)->build_request(ctx, Json(req), u);
    });
  }
  static ferry_status parse_response(ferry_instance* i, ferry_ctx* c, const ferry_http_response* r,
                                     ferry_sink* s) noexcept {
    return guarded_as<Provider>(i, "parse_response", [&] {
      Context ctx(c);
      Sink sink(s);
      return self<Provider>(i)->parse_response(ctx, to_response(r), sink);
    });
  }
  static ferry_status stream_open(ferry_instance* i, ferry_ctx* c, ferry_stream** out) noexcept {
    *out = nullptr;
    return guarded_as<Provider>(i, "stream_open", [&] {
      Context ctx(c);
      auto parser = self<Provider>(i)->open_stream(ctx);
      if (!parser) return Status::kUnsupported;
      *out = reinterpret_cast<ferry_stream*>(parser.release());
      return kOk;
    });
  }
  static ferry_status parse_event(ferry_instance* i, ferry_stream* st, ferry_ctx* c, const ferry_sse_event* e,
                                  ferry_sink* s) noexcept {
    return guarded_as<Provider>(i, "parse_event", [&] {
      Context ctx(c);
      Sink sink(s);
      SseEvent ev{sv(e->event), sv(e->data), sv(e->id), Json(e->json)};
      return reinterpret_cast<StreamParser*>(st)->on_event(ctx, ev, sink);
    });
  }
  static void stream_close(ferry_instance*, ferry_stream* st) noexcept {
    delete reinterpret_cast<StreamParser*>(st);
  }
  static ferry_status stream_end(ferry_instance* i, ferry_stream* st, ferry_ctx* c, ferry_sink* s) noexcept {
    return guarded_as<Provider>(i, "stream_end", [&] {
      Context ctx(c);
      Sink sink(s);
      return reinterpret_cast<StreamParser*>(st)->on_end(ctx, sink);
    });
  }
  static ferry_status parse_bytes(ferry_instance* i, ferry_stream* st, ferry_ctx* c, ferry_view bytes,
                                  ferry_sink* s) noexcept {
    return guarded_as<Provider>(i, "parse_bytes", [&] {
      Context ctx(c);
      Sink sink(s);
      return reinterpret_cast<StreamParser*>(st)->on_bytes(ctx, sv(bytes), sink);
    });
  }
  static ferry_status build_probe(ferry_instance* i, ferry_upstream* up) noexcept {
    return guarded_as<Provider>(i, "build_probe", [&] {
      Upstream u(up);
      return self<Provider>(i)->build_probe(u);
    });
  }
  static ferry_status serve(ferry_instance* i, ferry_ctx* c, const ferry_json* req, ferry_sink* s) noexcept {
    return guarded_as<Provider>(i, "serve", [&] {
      Context ctx(c);
      Sink sink(s);
      return self<Provider>(i)->serve(ctx, Json(req), sink);
    });
  }
};

// A provider's stream parser type, when it names it, else StreamParser itself.
template <class T, class = void>
struct stream_type_of {
  using type = StreamParser;
};
template <class T>
struct stream_type_of<T, std::void_t<typename T::stream_type>> {
  using type = typename T::stream_type;
};

// Only what T really overrides goes into the vtable, so the host can tell a
// serving provider from an HTTP one (NULL = not implemented, ABI.md R6).
template <class T>
const ferry_provider_vtable* provider_vtable() {
  static const ferry_provider_vtable vt = [] {
    ferry_provider_vtable v{};
    v.struct_size = sizeof v;
    v.create = &create<T, Provider>;
    v.destroy = &destroy<Provider>;
    if constexpr (!std::is_same_v<decltype(&T::build_request), decltype(&Provider::build_request)>)
      v.build_request = &ProviderGlue::build_request;
    if constexpr (!std::is_same_v<decltype(&T::parse_response), decltype(&Provider::parse_response)>)
      v.parse_response = &ProviderGlue::parse_response;
    if constexpr (!std::is_same_v<decltype(&T::open_stream), decltype(&Provider::open_stream)>) {
      v.stream_open = &ProviderGlue::stream_open;
      v.parse_event = &ProviderGlue::parse_event;
      v.stream_close = &ProviderGlue::stream_close;
    }
    if constexpr (!std::is_same_v<decltype(&T::serve), decltype(&Provider::serve)>)
      v.serve = &ProviderGlue::serve;
    if constexpr (!std::is_same_v<decltype(&T::build_probe), decltype(&Provider::build_probe)>)
      v.build_probe = &ProviderGlue::build_probe;
    using S = typename stream_type_of<T>::type;
    if constexpr (!std::is_same_v<decltype(&S::on_end), decltype(&StreamParser::on_end)>)
      v.stream_end = &ProviderGlue::stream_end;
    if constexpr (!std::is_same_v<decltype(&S::on_bytes), decltype(&StreamParser::on_bytes)>)
      v.parse_bytes = &ProviderGlue::parse_bytes;
    return v;
  }();
  return &vt;
}

struct RouterGlue {
  static ferry_status route(ferry_instance* i, ferry_ctx* c, const ferry_json* req,
                            const ferry_candidate* const* cands, size_t n, size_t* order,
                            size_t* order_len) noexcept {
    *order_len = 0;
    return guarded_as<Router>(i, "route", [&] {
      Context ctx(c);
      Route r(std::span<const ferry_candidate* const>(cands, n), order);
      auto s = self<Router>(i)->route(ctx, Json(req), r);
      *order_len = r.length();
      return s;
    });
  }
};

template <class T>
const ferry_router_vtable* router_vtable() {
  static const ferry_router_vtable vt = [] {
    ferry_router_vtable v{};
    v.struct_size = sizeof v;
    v.create = &create<T, Router>;
    v.destroy = &destroy<Router>;
    v.route = &RouterGlue::route;
    return v;
  }();
  return &vt;
}

struct MiddlewareGlue {
  static Filter& target(ferry_instance* i, ferry_filter* f) {
    if (f) return *reinterpret_cast<Filter*>(f);
    return *self<Middleware>(i);
  }
  static ferry_status filter_new(ferry_instance* i, ferry_ctx* c, ferry_filter** out) noexcept {
    *out = nullptr;
    return guarded_as<Middleware>(i, "new_filter", [&] {
      Context ctx(c);
      *out = reinterpret_cast<ferry_filter*>(self<Middleware>(i)->new_filter(ctx).release());
      return kOk;
    });
  }
  static void filter_free(ferry_instance*, ferry_filter* f) noexcept { delete reinterpret_cast<Filter*>(f); }
  static ferry_status on_request(ferry_instance* i, ferry_filter* f, ferry_ctx* c, ferry_json* doc) noexcept {
    return guarded_as<Middleware>(i, "on_request", [&] {
      Context ctx(c);
      Json j(doc);
      return target(i, f).on_request(ctx, j);
    });
  }
  static ferry_status on_response(ferry_instance* i, ferry_filter* f, ferry_ctx* c,
                                  ferry_json* doc) noexcept {
    return guarded_as<Middleware>(i, "on_response", [&] {
      Context ctx(c);
      Json j(doc);
      return target(i, f).on_response(ctx, j);
    });
  }
  static ferry_status on_chunk(ferry_instance* i, ferry_filter* f, ferry_ctx* c, ferry_json* doc) noexcept {
    return guarded_as<Middleware>(i, "on_chunk", [&] {
      Context ctx(c);
      Json j(doc);
      return target(i, f).on_chunk(ctx, j);
    });
  }
  static void on_event(ferry_instance* i, const ferry_event* e) noexcept {
    guarded_as<Middleware>(i, "on_event", [&] {
      self<Middleware>(i)->on_event(*e);
      return kOk;
    });
  }
  static ferry_status on_attempt(ferry_instance* i, ferry_filter* f, ferry_ctx* c,
                                 ferry_view provider) noexcept {
    return guarded_as<Middleware>(i, "on_attempt", [&] {
      Context ctx(c);
      return target(i, f).on_attempt(ctx, sv(provider));
    });
  }
  static ferry_status on_admin(ferry_instance* i, const ferry_admin_request* r,
                               ferry_admin_reply* reply) noexcept {
    return guarded_as<Middleware>(i, "on_admin", [&] {
      AdminRequest req{sv(r->method), sv(r->path), sv(r->query), sv(r->body)};
      return self<Middleware>(i)->on_admin(req, AdminReply(reply));
    });
  }
  static void on_complete(ferry_instance* i, ferry_filter* f, ferry_ctx* c,
                          const ferry_request_summary* s) noexcept {
    guarded_as<Middleware>(i, "on_complete", [&] {
      Context ctx(c);
      target(i, f).on_complete(ctx, *s);
      return kOk;
    });
  }
};

// A middleware's per-request filter type, when it names it (`using
// filter_type = MyFilter;`), else Filter itself (which overrides nothing).
template <class T, class = void>
struct filter_type_of {
  using type = Filter;
};
template <class T>
struct filter_type_of<T, std::void_t<typename T::filter_type>> {
  using type = typename T::filter_type;
};
template <class T>
inline constexpr bool has_filter_type = !std::is_same_v<typename filter_type_of<T>::type, Filter>;

template <class T>
const ferry_middleware_vtable* middleware_vtable() {
  static const ferry_middleware_vtable vt = [] {
    ferry_middleware_vtable v{};
    v.struct_size = sizeof v;
    v.create = &create<T, Middleware>;
    v.destroy = &destroy<Middleware>;
    v.filter_new = &MiddlewareGlue::filter_new;
    v.filter_free = &MiddlewareGlue::filter_free;
    // Hooks stay NULL unless T or its filter overrides them, so the host skips
    // the call entirely on the hot path (an on_chunk costs a parse of every
    // streamed chunk). Filters named by `using filter_type = ...;` are looked
    // at; an unnamed filter type may override anything, so then every hook is set.
    constexpr bool has_filter = !std::is_same_v<decltype(&T::new_filter), decltype(&Middleware::new_filter)>;
    constexpr bool unknown_filter = has_filter && !has_filter_type<T>;
    using F = typename filter_type_of<T>::type;
    if (unknown_filter || !std::is_same_v<decltype(&T::on_request), decltype(&Filter::on_request)> ||
        !std::is_same_v<decltype(&F::on_request), decltype(&Filter::on_request)>)
      v.on_request = &MiddlewareGlue::on_request;
    if (unknown_filter || !std::is_same_v<decltype(&T::on_response), decltype(&Filter::on_response)> ||
        !std::is_same_v<decltype(&F::on_response), decltype(&Filter::on_response)>)
      v.on_response = &MiddlewareGlue::on_response;
    if (unknown_filter || !std::is_same_v<decltype(&T::on_chunk), decltype(&Filter::on_chunk)> ||
        !std::is_same_v<decltype(&F::on_chunk), decltype(&Filter::on_chunk)>)
      v.on_chunk = &MiddlewareGlue::on_chunk;
    if (unknown_filter || !std::is_same_v<decltype(&T::on_complete), decltype(&Filter::on_complete)> ||
        !std::is_same_v<decltype(&F::on_complete), decltype(&Filter::on_complete)>)
      v.on_complete = &MiddlewareGlue::on_complete;
    if (unknown_filter || !std::is_same_v<decltype(&T::on_attempt), decltype(&Filter::on_attempt)> ||
        !std::is_same_v<decltype(&F::on_attempt), decltype(&Filter::on_attempt)>)
      v.on_attempt = &MiddlewareGlue::on_attempt;
    if (!std::is_same_v<decltype(&T::on_event), decltype(&Middleware::on_event)>)
      v.on_event = &MiddlewareGlue::on_event;
    if (!std::is_same_v<decltype(&T::on_admin), decltype(&Middleware::on_admin)>)
      v.on_admin = &MiddlewareGlue::on_admin;
    if (!has_filter) {
      v.filter_new = nullptr;
      v.filter_free = nullptr;
    }
    return v;
  }();
  return &vt;
}

inline ferry_status negotiate(ferry_negotiation* n, const ferry_plugin_info* info) noexcept {
  if (!n || n->struct_size < offsetof(ferry_negotiation, plugin) + sizeof(n->plugin))
    return FERRY_ERR_ABI_MISMATCH;
  n->plugin_abi_major = FERRY_ABI_MAJOR;
  n->plugin_abi_minor = FERRY_ABI_MINOR;
  n->plugin = nullptr;
  if (n->host_abi_major != FERRY_ABI_MAJOR || !n->host) return FERRY_ERR_ABI_MISMATCH;
  g_host = n->host;
  g_self = n->self;
  n->plugin = info;
  return FERRY_OK;
}

}  // namespace detail

}  // namespace ferry::sdk

#endif  // FERRY_SDK_GLUE_HPP
