#include "core/pipeline/failover.h"

#include "core/log/log.h"
#include "core/metrics/metrics.h"

namespace ferry::pipeline {

namespace asio = boost::asio;
using resilience::ErrorClass;
using Result = AttemptReport::Result;

namespace {

// Counts an attempt in its provider's in-flight number for exactly as long as
// it runs, however it ends.
class InFlight {
 public:
  explicit InFlight(std::atomic<uint32_t>& n) : n_(n) { n_.fetch_add(1, std::memory_order_relaxed); }
  ~InFlight() { n_.fetch_sub(1, std::memory_order_relaxed); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::atomic<uint32_t>& n_;
};

}  // namespace

std::optional<int64_t> context_window(const Provider& p) {
  const json::Value* v = json::find(*const_cast<json::Doc&>(p.attributes).value(), "/context_window");
  if (!v || !v->is_number()) return std::nullopt;
  return v->get<int64_t>();
}

asio::awaitable<FailoverEnd> Failover::run(const std::vector<const Provider*>& order) {
  // One coroutine for the whole walk, loops inline: each frame costs an
  // allocation on every request.
  const auto& policy = request_.policy;
  bool deadline_hit = false;
  for (const Provider* p : order) {
    if (min_context_window_) {
      auto window = context_window(*p);
      if (!window || *window <= *min_context_window_) continue;
    }
    auto& model_state = p->models->for_model(ctx_.model);
    auto& breaker = model_state.breaker;
    for (uint32_t retry = 0;; ++retry) {
      if (host_.now() >= request_.deadline) {
        deadline_hit = true;
        break;
      }
      ctx_.provider = p->name;
      // Middleware may veto this provider for this attempt (its own limits).
      std::string skipped_by;
      if (host_.may_skip()) skipped_by = co_await host_.skipped_by(*p);
      if (!skipped_by.empty()) {
        // Why and for how long: ctx_skip (1.3), or the tags skip_reason and
        // retry_after_ms of 1.2 plugins.
        std::optional<std::string> reason;
        std::optional<uint64_t> retry_after_ms;
        if (ctx_.skip.set) {
          if (!ctx_.skip.reason.empty()) reason = ctx_.skip.reason;
          if (ctx_.skip.retry_after_ms) retry_after_ms = ctx_.skip.retry_after_ms;
          ctx_.skip = {};
        } else {
          if (const std::string* r = ctx_.tag("skip_reason")) reason = *r;
          if (const std::string* ms = ctx_.tag("retry_after_ms"))
            retry_after_ms = std::strtoull(ms->c_str(), nullptr, 10);
        }
        failures_.push_back(Failure::provider_skipped(p->name, skipped_by, reason, retry_after_ms));
        last_failure_ = failures_.back();
        break;
      }
      if (!breaker.acquire()) {
        // Its half-open probe slots were taken since routing (or it just opened).
        failures_.push_back(Failure::circuit_open(p->name));
        break;
      }
      if (retry == 0 && !last_failed_provider_.empty())
        host_.emit({FERRY_EVENT_PROVIDER_SWITCHED, last_failed_provider_, p->name, ctx_.model, ctx_.pipeline,
                    ctx_.request_id, last_failure_.message});
      if (retry == 0) outcome_.tried += (outcome_.tried.empty() ? "" : ",") + p->name;
      ++outcome_.attempts;
      auto started = host_.now();
      AttemptReport report;
      {
        InFlight counted(p->stats.in_flight);
        report = co_await host_.attempt(*p, model_state);
      }
      if (ctx_.cancelled() && report.result != Result::kSuccess) {
        // Abandoned mid-attempt: says nothing about the provider, and there
        // is nobody left to fail over for. (After a whole answer went out, a
        // client closing its end is just a client done reading.)
        co_return FailoverEnd::kAbandoned;
      }
      record(*p, model_state, report,
             std::chrono::duration_cast<std::chrono::microseconds>(host_.now() - started));
      if (report.result != Result::kFailed) {
        outcome_.provider = p->name;
        co_return FailoverEnd::kAnswered;
      }
      // A host that gives no reason still failed: an upstream error it is.
      last_failure_ = report.failure ? *report.failure : Failure::bad_upstream(p->name, "failed");
      const Failure& f = last_failure_;
      failures_.push_back(f);
      last_failed_provider_ = p->name;
      host_.emit(
          {FERRY_EVENT_PROVIDER_FAILED, p->name, {}, ctx_.model, ctx_.pipeline, ctx_.request_id, f.message});
      if (report.deadline_cut && f.cls == ErrorClass::kTimeout) {
        deadline_hit = true;  // it was the request's time that ran out, not the provider's
        break;
      }
      auto action = policy.action(f.cls);
      if (action == resilience::Action::kReturn) {
        // The request itself is wrong (or the pipeline says so): another
        // provider would answer the same.
        failure_ = f;
        co_return FailoverEnd::kReturn;
      }
      if (action == resilience::Action::kRetry && retry < policy.max_retries) {
        auto delay = policy.backoff(retry, host_.unit_random());
        if (auto after = resilience::parse_retry_after(f.retry_after)) {
          if (*after > policy.max_retry_after) break;  // too long to wait here: fail over
          delay = std::max(delay, *after);
        }
        if (host_.now() + delay >= request_.deadline) break;
        log::get().info("[{}] provider '{}' failed ({}); retrying in {} ms", ctx_.request_id, p->name,
                        f.message, delay.count());
        co_await host_.sleep(delay);
        if (ctx_.cancelled()) {
          co_return FailoverEnd::kAbandoned;
        }
        ++outcome_.retries;
        continue;
      }
      if (f.cls == ErrorClass::kContextLength) {
        auto window = context_window(*p);
        if (!window) {
          // Without context_window attributes no provider is known to be larger.
          failure_ = f;
          co_return FailoverEnd::kReturn;
        }
        min_context_window_ = window;
      }
      break;  // fail over
    }
    if (deadline_hit) break;
    if (p != order.back())
      log::get().info("[{}] provider '{}' failed ({}); failing over", ctx_.request_id, p->name,
                      last_failure_.message);
  }
  failure_ = deadline_hit ? deadline_exceeded(request_.deadline_ms, failures_)
                          : all_attempts_failed(request_.pipeline, failures_);
  co_return FailoverEnd::kExhausted;
}

void Failover::record(const Provider& p, ModelState& model, const AttemptReport& report,
                      std::chrono::microseconds took) {
  // Client errors say nothing against the provider, nor does running out of
  // the request's own deadline; a stream it broke does.
  const ErrorClass cls = report.failure ? report.failure->cls : ErrorClass::kServerError;
  bool failed = report.result == Result::kFailed;
  bool provider_ok = failed ? (report.deadline_cut && cls == ErrorClass::kTimeout) ||
                                  cls == ErrorClass::kClientError || cls == ErrorClass::kContextLength ||
                                  cls == ErrorClass::kContentFilter
                            : !report.broke_stream;
  auto us = static_cast<uint64_t>(took.count());
  p.stats.record(provider_ok, us);
  if (!failed) ewma(model.latency_ewma_us, us);
  if (auto changed = model.breaker.record(provider_ok)) {
    auto state = *changed;
    host_.emit(
        {state == resilience::Breaker::State::kOpen ? FERRY_EVENT_BREAKER_OPENED : FERRY_EVENT_BREAKER_CLOSED,
         p.name,
         {},
         ctx_.model,
         ctx_.pipeline,
         ctx_.request_id,
         resilience::Breaker::name(state)});
    metrics::Registry::global().add(std::string("ferry_breaker_transitions_total{provider=\"") + p.name +
                                        "\",to=\"" + resilience::Breaker::name(state) + "\"}",
                                    1);
  }
  metrics::Registry::global().add("ferry_upstream_attempts_total{provider=\"" + p.name + "\",outcome=\"" +
                                      (failed ? "failed" : "ok") + "\"}",
                                  1);
}

}  // namespace ferry::pipeline
