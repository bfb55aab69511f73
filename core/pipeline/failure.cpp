#include "core/pipeline/failure.h"

#include <cstdlib>

#include "core/util/secrets.h"

namespace ferry::pipeline {

namespace {

using resilience::ErrorClass;

// "provider 'name' why", or "provider 'name': why" when why is ": ...":
// the messages users and tests know.
std::string about(std::string_view provider, std::string_view why) {
  std::string s = "provider '";
  s.append(provider);
  s += '\'';
  if (!why.starts_with(':')) s += ' ';
  s.append(why);
  return s;
}

Failure make(int status, std::string_view type, std::string_view code, std::string message,
             ErrorClass cls = ErrorClass::kServerError) {
  Failure f;
  f.status = status;
  f.type.assign(type);
  f.code.assign(code);
  f.message = std::move(message);
  f.cls = cls;
  return f;
}

}  // namespace

Failure Failure::bad_upstream(std::string_view provider, std::string_view why) {
  return make(502, "upstream_error", "bad_upstream_response", about(provider, why));
}

Failure Failure::provider_error(std::string_view provider, std::string_view why) {
  return make(502, "upstream_error", "provider_error", about(provider, why));
}

Failure Failure::upstream_timeout(std::string_view provider, std::string_view why) {
  return make(504, "timeout_error", "upstream_timeout", about(provider, why), ErrorClass::kTimeout);
}

Failure Failure::stream_interrupted(std::string_view provider, std::string_view why) {
  return make(502, "upstream_error", "stream_interrupted", about(provider, why));
}

Failure Failure::unsupported(std::string_view provider, std::string_view operation) {
  return make(502, "upstream_error", "unsupported_operation",
              about(provider, "does not serve " + std::string(operation)));
}

Failure Failure::from_upstream(const http::UpstreamError& e, std::string_view provider) {
  using K = http::UpstreamError::Kind;
  std::string message = about(provider, ": " + e.message);
  switch (e.kind) {
    case K::kTimeout:
      return make(504, "timeout_error", "upstream_timeout", std::move(message), ErrorClass::kTimeout);
    case K::kTooLarge:
    case K::kProtocol: return make(502, "upstream_error", "bad_upstream_response", std::move(message));
    case K::kCancelled:
      // The request was abandoned (its client went away): nothing to hold
      // against the provider.
      return make(499, "upstream_error", "client_gone", std::move(message), ErrorClass::kClientError);
    default:
      return make(502, "upstream_error", "upstream_unavailable", std::move(message), ErrorClass::kConnect);
  }
}

Failure Failure::from_upstream_error(std::string_view provider, int status, std::string_view type,
                                     std::string_view message) {
  Failure f;
  f.status = status;
  f.cls = resilience::classify(status, type, message);
  std::string said(message);
  if (status == 401 || status == 403) {
    // The upstream refused the gateway's credentials: not the client's
    // fault, and another provider may well accept its own.
    said = "upstream rejected the configured credentials (HTTP " + std::to_string(status) + "): " + said;
    f.status = 502;
    type = "upstream_error";
  }
  f.type = type.empty() ? "upstream_error" : std::string(type);
  f.code = "upstream_error";
  // What the upstream said goes to the client and the logs: an error body
  // may echo the gateway's own credentials.
  f.message = about(provider, ": " + secrets::scrub(said));
  return f;
}

Failure Failure::from_provider_error(std::string_view provider, const SinkEvent& error) {
  Failure f = from_upstream_error(provider, error.status, error.type, error.message);
  using resilience::ErrorClass;
  static constexpr ErrorClass kClasses[] = {ErrorClass::kConnect,       ErrorClass::kTimeout,
                                            ErrorClass::kRateLimited,   ErrorClass::kServerError,
                                            ErrorClass::kClientError,   ErrorClass::kContextLength,
                                            ErrorClass::kContentFilter, ErrorClass::kAuth};
  if (error.error_class >= FERRY_ERROR_CLASS_CONNECT && error.error_class <= FERRY_ERROR_CLASS_AUTH)
    f.cls = kClasses[error.error_class - FERRY_ERROR_CLASS_CONNECT];
  if (!error.code.empty()) f.code = error.code;
  if (error.retry_after_ms) f.retry_after = std::to_string((error.retry_after_ms + 999) / 1000);
  return f;
}

Failure Failure::circuit_open(std::string_view provider) {
  return make(503, "upstream_error", "circuit_open", about(provider, ": circuit breaker open"));
}

Failure Failure::provider_skipped(std::string_view provider, std::string_view middleware,
                                  const std::optional<std::string>& reason,
                                  std::optional<uint64_t> retry_after_ms) {
  std::string why = ": skipped by middleware '" + std::string(middleware) + "'";
  if (reason) why += ": " + *reason;
  Failure f =
      make(429, "rate_limit_error", "provider_skipped", about(provider, why), ErrorClass::kRateLimited);
  // Retry-After is in whole seconds, rounded up.
  if (retry_after_ms) f.retry_after = std::to_string((*retry_after_ms + 999) / 1000);
  return f;
}

Failure circuits_open(std::string_view providers, std::string_view model) {
  Failure f = make(503, "upstream_error", "circuit_open",
                   "no provider can take the request: the circuit breaker is open for " +
                       std::string(providers) + " (model '" + std::string(model) + "')");
  // Not `= "1"`: g++ 12 warns falsely (-Wrestrict) on assigning a literal here.
  f.retry_after.push_back('1');
  return f;
}

Failure deadline_exceeded(int64_t deadline_ms, const std::vector<Failure>& failures) {
  std::string message = "the request's deadline of " + std::to_string(deadline_ms) + " ms passed";
  for (size_t i = 0; i < failures.size(); ++i) message += (i ? "; " : " after: ") + failures[i].message;
  return make(504, "timeout_error", "deadline_exceeded", std::move(message));
}

Failure all_attempts_failed(std::string_view pipeline, const std::vector<Failure>& failures) {
  if (failures.empty()) {
    // Only a context-length failure skips providers without trying them.
    return make(400, "invalid_request_error", "context_length_exceeded",
                "no provider of pipeline '" + std::string(pipeline) + "' has a larger context window");
  }
  if (failures.size() == 1 || failures.back().cls == ErrorClass::kContextLength) return failures.back();
  // Every candidate failed with a provider-side error.
  bool all_timeouts = true;
  bool all_limited = true;
  std::string message = "all " + std::to_string(failures.size()) + " attempts failed: ";
  for (size_t i = 0; i < failures.size(); ++i) {
    all_timeouts = all_timeouts && failures[i].status == 504;
    all_limited = all_limited && failures[i].status == 429;
    message += (i ? "; " : "") + failures[i].message;
  }
  Failure all = make(all_timeouts  ? 504
                     : all_limited ? 429
                                   : 502,
                     all_timeouts  ? "timeout_error"
                     : all_limited ? "rate_limit_error"
                                   : "upstream_error",
                     "all_providers_failed", std::move(message));
  if (all_limited) all.retry_after = failures.back().retry_after;
  return all;
}

}  // namespace ferry::pipeline
