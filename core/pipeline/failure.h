#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/http/upstream_client.h"
#include "core/pipeline/async_state.h"
#include "core/resilience/policy.h"

namespace ferry::pipeline {

// Why an attempt (or the whole request) did not produce an answer the client
// got: the HTTP status, the OpenAI error type/code the client sees, and the
// class failover decides by. Built only through the named constructors below,
// so each kind of failure has one spelling of its status, type and code.
struct Failure {
  int status = 502;
  std::string type;  // set by every named constructor
  std::string code;
  std::string message;
  std::string retry_after;  // seconds, as the Retry-After header wants them
  resilience::ErrorClass cls = resilience::ErrorClass::kServerError;

  // An upstream answer that cannot be what it claims (garbage, wrong shape,
  // an encoding that was not asked for): the provider is broken. `why`
  // follows "provider 'name'", with ": " if it starts with ':'.
  static Failure bad_upstream(std::string_view provider, std::string_view why);
  // The provider's adapter itself failed (could not build or start).
  static Failure provider_error(std::string_view provider, std::string_view why);
  // Nothing came in time.
  static Failure upstream_timeout(std::string_view provider, std::string_view why);
  // A stream that ended before its end.
  static Failure stream_interrupted(std::string_view provider, std::string_view why);
  // FERRY_ERR_UNSUPPORTED: not this provider's kind of request (embeddings
  // from a chat-only API); the next candidate is tried.
  static Failure unsupported(std::string_view provider, std::string_view operation);
  // The transport failed (connect, TLS, timeout, cancelled, too large).
  static Failure from_upstream(const http::UpstreamError& e, std::string_view provider);
  // The upstream answered with an error (sink_error): its status decides the
  // class. 401/403 are the gateway's credentials, not the client's fault.
  // A provider's error as sink_fail / upstream_refuse (1.3) report it: its
  // class (a ferry_error_class; 0: from the status), code and retry-after.
  static Failure from_provider_error(std::string_view provider, const SinkEvent& error);
  static Failure from_upstream_error(std::string_view provider, int status, std::string_view type,
                                     std::string_view message);
  // The provider's breaker took no more probes since routing (or just opened).
  static Failure circuit_open(std::string_view provider);
  // An on_attempt hook vetoed the provider; why and for how long, if it said
  // (ctx_skip, or the 1.2 tags skip_reason and retry_after_ms).
  static Failure provider_skipped(std::string_view provider, std::string_view middleware,
                                  const std::optional<std::string>& reason,
                                  std::optional<uint64_t> retry_after_ms);
};

// Routing found only providers whose circuit breaker is open (`providers`,
// comma-separated): the client may come back in a second.
Failure circuits_open(std::string_view providers, std::string_view model);

// What the client is told once failover is over without an answer: the
// request's deadline passed, no provider had a larger context window, or
// every attempt failed (`failures`, in order).
Failure deadline_exceeded(int64_t deadline_ms, const std::vector<Failure>& failures);
Failure all_attempts_failed(std::string_view pipeline, const std::vector<Failure>& failures);

}  // namespace ferry::pipeline
