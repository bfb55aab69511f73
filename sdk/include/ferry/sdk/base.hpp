// ferry/sdk/base.hpp - Status codes, the host table, logs, metrics, secrets, and which instance is current.
// Part of the C++ wrapper; include <ferry/plugin.hpp>, which includes every part in order.
#ifndef FERRY_SDK_BASE_HPP
#define FERRY_SDK_BASE_HPP

#ifndef FERRY_PLUGIN_HPP
#error "include <ferry/plugin.hpp>"
#endif

namespace ferry::sdk {

enum class Status : ferry_status {
  kContinue = FERRY_CONTINUE,
  kRespond = FERRY_RESPOND,
  kPause = FERRY_PAUSE,
  kSkip = FERRY_SKIP,  // on_attempt: not this provider (1.2)
  kInvalidArgument = FERRY_ERR_INVALID_ARGUMENT,
  kNotFound = FERRY_ERR_NOT_FOUND,
  kTypeMismatch = FERRY_ERR_TYPE_MISMATCH,
  kParse = FERRY_ERR_PARSE,
  kUnsupported = FERRY_ERR_UNSUPPORTED,
  kConfig = FERRY_ERR_CONFIG,
  kBadState = FERRY_ERR_BAD_STATE,
  kUpstream = FERRY_ERR_UPSTREAM,
  kUnavailable = FERRY_ERR_UNAVAILABLE,
  kInternal = FERRY_ERR_INTERNAL,
};
inline constexpr Status kOk = Status::kContinue;

enum class LogLevel : ferry_log_level {
  kTrace = FERRY_LOG_TRACE,
  kDebug = FERRY_LOG_DEBUG,
  kInfo = FERRY_LOG_INFO,
  kWarn = FERRY_LOG_WARN,
  kError = FERRY_LOG_ERROR,
};

inline ferry_view view(std::string_view s) { return ferry_view{s.data(), s.size()}; }
inline std::string_view sv(ferry_view v) {
  return v.ptr ? std::string_view(v.ptr, v.len) : std::string_view();
}

namespace detail {
// Set once by ferry_plugin_negotiate before any other call (ABI.md R1).
inline const ferry_host_api* g_host = nullptr;
inline ferry_plugin_handle* g_self = nullptr;
// The configured instance whose hook runs on this thread (ABI 1.3, R20):
// logs, metrics and state keys are that instance's, not the library's.
// Static TLS (initial-exec), not the dynamic TLS a dlopen'ed library gets by
// default: a pointer per plugin fits glibc's reserve, costs no __tls_get_addr
// call, and leaves nothing for LeakSanitizer's thread scan to trip over
// (its tracer crashes on dynamic TLS blocks of threads that touched them).
[[gnu::tls_model("initial-exec")]] inline thread_local ferry_plugin_handle* t_self = nullptr;
inline ferry_plugin_handle* current_self() { return t_self ? t_self : g_self; }

// Makes `self` the current instance while alive.
class SelfScope {
 public:
  explicit SelfScope(ferry_plugin_handle* self) : previous_(t_self) {
    if (self) t_self = self;
  }
  ~SelfScope() { t_self = previous_; }
  SelfScope(const SelfScope&) = delete;
  SelfScope& operator=(const SelfScope&) = delete;

 private:
  ferry_plugin_handle* previous_;
};

// What every configured instance carries: its own handle from the host.
class Identity {
 public:
  ferry_plugin_handle* instance_handle() const { return handle_; }

 private:
  template <class T, class Base>
  friend ferry_status create(const ferry_json* config, ferry_instance** out) noexcept;
  ferry_plugin_handle* handle_ = nullptr;
};
}  // namespace detail

// The host's service table. Valid from negotiation until the plugin unloads.
inline const ferry_host_api& host() { return *detail::g_host; }

inline void log(LogLevel level, std::string_view message, const ferry_ctx* ctx = nullptr) {
  host().log(detail::current_self(), ctx, static_cast<ferry_log_level>(level), view(message));
}

inline void metric(ferry_metric_kind kind, std::string_view name, double value) {
  host().metric(detail::current_self(), kind, view(name), value);
}

inline uint64_t monotonic_ns() { return host().clock_ns(FERRY_CLOCK_MONOTONIC); }

inline std::optional<std::string_view> secret(std::string_view env_name) {
  ferry_view out{};
  if (host().secret_get(view(env_name), &out) != FERRY_OK) return std::nullopt;
  return sv(out);
}

}  // namespace ferry::sdk

#endif  // FERRY_SDK_BASE_HPP
