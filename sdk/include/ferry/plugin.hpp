// plugin.hpp - header-only C++20 wrapper over ferry.h.
//
// A plugin author subclasses ferry::sdk::Provider, ::Router, ::Middleware or
// (ABI 1.3, ferry/sdk/frontend.hpp) ::Frontend,
// gives it a constructor taking `ferry::sdk::Config&`, overrides the hooks it
// needs and writes one export macro:
//
//   class Shout : public ferry::sdk::Middleware {
//    public:
//     explicit Shout(ferry::sdk::Config& config) {}
//     ferry::sdk::Status on_request(ferry::sdk::Context& ctx, ferry::sdk::Json& request) override;
//   };
//   FERRY_MIDDLEWARE_PLUGIN(Shout, "shout", "1.0.0")
//
// The generated trampolines catch every exception, so none crosses the C ABI
// (sdk/ABI.md R11): a throwing hook becomes FERRY_ERR_INTERNAL and a log line.
// Everything here is a thin, non-owning view over host handles; lifetimes are
// those of ferry.h.
//
// This umbrella includes the parts in ferry/sdk/, in order: base (statuses,
// the host table, logs), util, json, policy (gateway conventions), config,
// state, context, provider, router, middleware, glue (trampolines and vtable
// builders) and frontend.
#ifndef FERRY_PLUGIN_HPP
#define FERRY_PLUGIN_HPP

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ferry/ferry.h"

// The wrapper owns the layout of the callback argument (schedule, state_call).
struct ferry_task {
  std::function<void(bool cancelled)> fn;
  std::function<void(const ferry_state_result&)> state_fn;
  std::function<void(int status, std::string_view body, bool cancelled)> call_fn;
  // The instance that made the call (1.3): current again when the callback
  // runs, so that what it logs and stores stays that instance's.
  ferry_plugin_handle* self = nullptr;
};

// The parts, in the order they build on each other (not alphabetical).
// clang-format off
#include "ferry/sdk/base.hpp"
#include "ferry/sdk/util.hpp"
#include "ferry/sdk/json.hpp"
#include "ferry/sdk/policy.hpp"
#include "ferry/sdk/config.hpp"
#include "ferry/sdk/state.hpp"
#include "ferry/sdk/context.hpp"
#include "ferry/sdk/provider.hpp"
#include "ferry/sdk/router.hpp"
#include "ferry/sdk/middleware.hpp"
#include "ferry/sdk/glue.hpp"
#include "ferry/sdk/frontend.hpp"
// clang-format on

#define FERRY_SDK_DEFINE_ENTRY_(kind_value, field, vtable_expr, plugin_name, plugin_version)    \
  extern "C" FERRY_EXPORT ferry_status ferry_plugin_negotiate(ferry_negotiation* negotiation) { \
    static const ferry_plugin_info info = [] {                                                  \
      ferry_plugin_info i{};                                                                    \
      i.struct_size = sizeof i;                                                                 \
      i.name = plugin_name;                                                                     \
      i.version = plugin_version;                                                               \
      i.kind = kind_value;                                                                      \
      i.field = vtable_expr;                                                                    \
      return i;                                                                                 \
    }();                                                                                        \
    return ::ferry::sdk::detail::negotiate(negotiation, &info);                                 \
  }

// Exactly one of these per plugin library.
#define FERRY_PROVIDER_PLUGIN(Type, name, version)                                                      \
  FERRY_SDK_DEFINE_ENTRY_(FERRY_KIND_PROVIDER, provider, ::ferry::sdk::detail::provider_vtable<Type>(), \
                          name, version)
#define FERRY_ROUTER_PLUGIN(Type, name, version)                                                        \
  FERRY_SDK_DEFINE_ENTRY_(FERRY_KIND_ROUTER, router, ::ferry::sdk::detail::router_vtable<Type>(), name, \
                          version)
#define FERRY_MIDDLEWARE_PLUGIN(Type, name, version)         \
  FERRY_SDK_DEFINE_ENTRY_(FERRY_KIND_MIDDLEWARE, middleware, \
                          ::ferry::sdk::detail::middleware_vtable<Type>(), name, version)
// ABI 1.3.
#define FERRY_FRONTEND_PLUGIN(Type, name, version)                                                      \
  FERRY_SDK_DEFINE_ENTRY_(FERRY_KIND_FRONTEND, frontend, ::ferry::sdk::detail::frontend_vtable<Type>(), \
                          name, version)

#endif  // FERRY_PLUGIN_HPP
