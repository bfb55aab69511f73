#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ferry::resilience {

// What went wrong with an attempt, as far as deciding what to do next goes.
enum class ErrorClass {
  kConnect,        // refused, reset, DNS, TLS
  kTimeout,        // no answer in time (or HTTP 408)
  kRateLimited,    // HTTP 429
  kServerError,    // 5xx, garbage, a broken stream before its first byte
  kClientError,    // other 4xx: the request itself is wrong
  kContextLength,  // the prompt does not fit this model
  kContentFilter,  // refused by the provider's content policy
  kAuth,           // HTTP 401/403: the upstream refused the gateway's own credentials, not the client
};
constexpr size_t kErrorClasses = 8;

enum class Action {
  kRetry,     // the same provider again (with backoff), then fail over
  kFailover,  // the next candidate
  kReturn,    // answer the client with this error
};

const char* name(ErrorClass c);
const char* name(Action a);
std::optional<ErrorClass> error_class_from_name(std::string_view name);
std::optional<Action> action_from_name(std::string_view name);

// An upstream error from its HTTP status and what the provider said.
ErrorClass classify(int status, std::string_view type, std::string_view message);

// A pipeline's answer to failures: what to do per class, how to retry, and
// how long a request may take before it gets its first byte.
struct Policy {
  std::array<Action, kErrorClasses> actions{
      Action::kFailover,  // connect
      Action::kFailover,  // timeout
      Action::kFailover,  // rate limited
      Action::kFailover,  // server error
      Action::kReturn,    // client error
      Action::kFailover,  // context length: only to a provider with a larger context_window
      Action::kReturn,    // content filter
      Action::kFailover,  // auth: another provider may accept its own key
  };
  uint32_t max_retries = 1;  // per provider, for classes whose action is retry
  std::chrono::milliseconds backoff_base{100};
  std::chrono::milliseconds backoff_max{2'000};
  std::chrono::milliseconds max_retry_after{10'000};  // a longer Retry-After means: fail over instead
  std::chrono::milliseconds deadline{0};              // 0: none (x-ferry-deadline-ms may still set one)
  // Streams: chunks held back before the first byte goes out, so that a
  // provider failing within them can still be replaced (0: send at once).
  uint32_t stream_hold_chunks = 0;

  Action action(ErrorClass c) const { return actions[static_cast<size_t>(c)]; }
  // Exponential backoff with full jitter for retry number `retry` (0-based),
  // given a uniform `unit` in [0, 1).
  std::chrono::milliseconds backoff(uint32_t retry, double unit) const;
};

// Retry-After as seconds or an HTTP date, in milliseconds; nullopt if absent
// or unreadable.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value);

}  // namespace ferry::resilience
