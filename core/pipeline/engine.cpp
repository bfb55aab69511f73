#include "core/pipeline/engine.h"


#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <optional>
#include <random>
#include <vector>

#include "core/log/log.h"
#include "core/metrics/metrics.h"
#include "core/pipeline/client_stream.h"
#include "core/pipeline/failure.h"
#include "core/pipeline/middleware_chain.h"
#include "core/pipeline/request_checks.h"
#include "core/pipeline/usage_estimate.h"
#include "core/plugin/host_api.h"
#include "core/sse/sse_parser.h"

namespace ferry::pipeline {

namespace asio = boost::asio;
using json::Doc;
using json::Value;

std::string error_json(std::string_view message, std::string_view type, std::string_view code) {
  Value err = {{"message", message}, {"type", type}, {"code", code.empty() ? Value(nullptr) : Value(code)}};
  return json::dump(Value{{"error", std::move(err)}});
}

namespace {

ferry_view fv(std::string_view s) { return ferry_view{s.data(), s.size()}; }

// What an upstream's SSE error event says, for the failure it becomes.
std::string error_event_message(Doc& data) {
  const Value* v = data.value();
  std::string message = "upstream sent an error event";
  if (v && v->is_object()) {
    const Value* err = member(*v, "error");
    const Value* m = err && err->is_object() ? member(*err, "message") : member(*v, "message");
    if (m && m->is_string()) message += ": " + m->get<std::string>();
  } else if (!data.text().empty()) {
    message += ": " + json::printable(data.text(), 200);
  }
  return message;
}

// True if `text` has "usage" whose value is an object (not null): the one
// chunk of a stream worth parsing for token counts before it is forwarded.
bool has_usage_object(std::string_view text) {
  for (size_t at = text.find("\"usage\""); at != std::string_view::npos;
       at = text.find("\"usage\"", at + 7)) {
    size_t i = at + 7;
    while (i < text.size() && (text[i] == ' ' || text[i] == ':' || text[i] == '\n' || text[i] == '\t')) ++i;
    if (i < text.size() && text[i] == '{') return true;
  }
  return false;
}

int64_t int_field(const Value& obj, const char* key) { return int_member(obj, key).value_or(-1); }

}  // namespace

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

// One chat request on its way through a pipeline. Lives in the coroutine frame.
class Call {
 public:
  Call(Engine& engine, RequestContext& ctx, ClientWriter& out)
      : rt_(engine.runtime_),
        client_(engine.client_),
        options_(engine.options_),
        ctx_(ctx),
        chain_(ctx, engine.options_.pause_timeout),
        stream_(ctx, out, o_) {}
  // A request that ends any other way than through run()'s end (an exception)
  // still completes: plugins' on_complete gives back what on_request took.
  ~Call() {
    if (!completed_) {
      if (o_.status == 0) o_.status = 500;
      if (o_.error.empty()) o_.error = "the request failed inside the gateway";
      complete();
    }
  }

  asio::awaitable<Outcome> run();

 private:
  enum class Result { kSuccess, kFailed, kFinished };

  // ---- middleware hooks
  asio::awaitable<bool> run_on_request();
  // on_attempt hooks (1.2): the name of the middleware that skipped p, or "".
  asio::awaitable<std::string> run_on_attempt(const Provider& p);
  void read_stream_options() {
    const Value* req = ctx_.request.value();
    ctx_.stream = o_.stream =
        bool_member(*req, "stream") && ctx_.operation == RequestContext::Operation::kChat && !ctx_.internal;
    const Value* so = member(*req, "stream_options");
    stream_.set_include_usage(so && bool_member(*so, "include_usage"));
  }
  asio::awaitable<bool> deliver_response(Doc& response, const Provider& p);
  asio::awaitable<bool> deliver_chunk(Doc chunk);
  // An upstream that streams past the request's max_tokens (it ignores it, or
  // lies) is stopped there: its connection is dropped so it stops generating,
  // and the client's stream ends as if the model had hit the limit. What the
  // budget reserved for this request therefore bounds what it costs.
  asio::awaitable<void> end_at_bound(const Provider& p) {
    cut_at_bound_ = true;
    log::get().warn("[{}] provider '{}' streamed past max_tokens={}: ending the stream there",
                    ctx_.request_id, p.name, completion_bound_);
    metrics::Registry::global().add("ferry_max_tokens_cut_total{provider=\"" + p.name + "\"}", 1);
    for (int64_t i = 0; i < choices_; ++i)
      stream_.queue(json::dump(
          Value{{"object", "chat.completion.chunk"},
                {"model", requested_model_},
                {"choices",
                 Value::array({{{"index", i}, {"delta", Value::object()}, {"finish_reason", "length"}}})}}));
    co_await stream_.finish();
  }
  // ---- providers
  // An attempt went wrong: before the first byte the next provider may take
  // over (kFailed); after it, the stream ends with an error event (kFinished).
  asio::awaitable<Result> fail(Failure f) {
    // What a cancelled attempt failed with is the cancellation, not the upstream.
    if (ctx_.cancelled() && !ctx_.cancel_reason().empty()) f.message = ctx_.cancel_reason();
    stream_.drop_held();  // chunks of a provider that failed before anything was sent
    if (stream_.committed()) {
      provider_broke_stream_ = true;
      co_await stream_.abort(f.message);
      co_return Result::kFinished;
    }
    last_failure_ = std::move(f);
    co_return Result::kFailed;
  }
  asio::awaitable<std::optional<std::vector<const Provider*>>> choose_providers();
  asio::awaitable<void> reply_circuit_open(const std::string& providers) {
    Failure f = circuits_open(providers, ctx_.model);
    co_await stream_.reply_failure(f);
  }
  asio::awaitable<Result> attempt(const Provider& p);
  asio::awaitable<Result> http_attempt(const Provider& p);
  asio::awaitable<Result> serve_attempt(const Provider& p);
  // Handles one sink event; sets done when the attempt is over.
  asio::awaitable<Result> on_event(SinkEvent& ev, const Provider& p, bool& done);
  void prepare_upstream_request(const Provider& p);

  void complete();
  const Runtime& rt_;
  http::UpstreamClient& client_;
  const EngineOptions& options_;
  RequestContext& ctx_;

  const Pipeline* pipeline_ = nullptr;
  MiddlewareChain chain_;
  std::string requested_model_;         // the request's model once middleware ran
  std::string last_failed_provider_;    // the provider of the last failed attempt, for provider_switched
  bool provider_broke_stream_ = false;  // the current attempt failed after its first byte
  // Until the first byte (the whole answer when not streaming): the sooner of
  // the pipeline's deadline_ms and the client's x-ferry-deadline-ms.
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  int64_t deadline_ms_ = 0;
  bool deadline_cut_ = false;  // the attempt's time ran out because of the deadline
  // A provider's attempt limits, shortened to what is left of the deadline.
  http::UpstreamOptions limits(const Provider& p) {
    http::UpstreamOptions o = p.upstream;
    if (deadline_ == std::chrono::steady_clock::time_point::max() || stream_.committed()) return o;
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now());
    left = std::max(left, std::chrono::milliseconds(1));
    if (left < o.read) {
      o.read = left;
      deadline_cut_ = true;
    }
    o.connect = std::min(o.connect, left);
    return o;
  }
  // A backoff; cancel() cuts it short.
  asio::awaitable<void> sleep(std::chrono::milliseconds d) {
    asio::steady_timer t(ctx_.async->executor(), d);
    co_await t.async_wait(
        asio::bind_cancellation_slot(ctx_.upstream_cancel_slot(), asio::as_tuple(asio::use_awaitable)));
  }
  static double unit_random() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::uniform_real_distribution<double>(0, 1)(rng);
  }
  static std::optional<int64_t> context_window(const Provider& p) {
    const Value* v = json::find(*const_cast<Doc&>(p.attributes).value(), "/context_window");
    if (!v || !v->is_number()) return std::nullopt;
    return v->get<int64_t>();
  }
  void breaker_changed(const Provider& p, resilience::Breaker::State state) {
    rt_.emit(
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
  std::chrono::steady_clock::time_point attempt_started_;
  bool first_byte_seen_ = false;
  // The provider's time to first byte feeds least-latency routing.
  void first_byte(const Provider& p) {
    if (first_byte_seen_) return;
    first_byte_seen_ = true;
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                    attempt_started_);
    p.stats.record_ttfb(static_cast<uint64_t>(us.count()));
    if (attempt_model_) ewma(attempt_model_->ttfb_ewma_us, static_cast<uint64_t>(us.count()));
  }
  ModelState* attempt_model_ = nullptr;  // the current attempt's provider+model state
  // The answer's text as forwarded, for usage an upstream did not report,
  // and the bound a stream may not pass (max_tokens, times n choices).
  ForwardedText forwarded_;
  int64_t completion_bound_ = -1;  // none
  int64_t choices_ = 1;
  bool over_bound_ = false;  // the next piece would pass the bound
  bool cut_at_bound_ = false;
  std::vector<SinkEvent> batch_;  // the provider's events being handled, reused
  bool completed_ = false;
  Failure last_failure_;
  Outcome o_;
  ClientStream stream_;  // after o_, which it writes
};

namespace {
// Where an internal request's answer goes: kept, not sent anywhere.
class CaptureWriter final : public ClientWriter {
 public:
  asio::awaitable<bool> send_json(int s, std::string_view b, const util::Headers&) override {
    status = s;
    body.assign(b);
    co_return true;
  }
  void begin_events(const util::Headers&) override { status = 200; }
  void queue_event(std::string_view) override {}
  void end_events() override {}
  asio::awaitable<bool> flush() override { co_return true; }
  int status = 0;
  std::string body;
};
}  // namespace

// Parameters by value: they live in the coroutine frame (no lambda captures
// whose lifetime would depend on how co_spawn keeps the function object).
asio::awaitable<void> Engine::run_call(asio::any_io_executor ex, std::string parent,
                                       RequestContext::Operation op, std::string body,
                                       std::function<void(int, std::string)> done) {
  RequestContext sub(ex, parent + ".call");
  sub.internal = true;
  sub.request = json::Doc::from_text(std::move(body));
  CaptureWriter out;
  if (op == RequestContext::Operation::kEmbeddings)
    co_await embeddings(sub, out);
  else
    co_await chat_completions(sub, out);
  done(out.status, std::move(out.body));
}

void Engine::enable_calls(RequestContext& ctx) {
  ctx.call_owner = this;
  ctx.call = [](void* owner, RequestContext& parent, RequestContext::Operation op, std::string body,
                RequestContext::CallDone done) {
    auto* engine = static_cast<Engine*>(owner);
    auto ex = parent.async->executor();
    asio::co_spawn(ex, engine->run_call(ex, parent.request_id, op, std::move(body), std::move(done)),
                   log::LogIfFailed{"[" + parent.request_id + "] internal call"});
  };
}

asio::awaitable<Outcome> Engine::embeddings(RequestContext& ctx, ClientWriter& out) {
  ctx.operation = RequestContext::Operation::kEmbeddings;
  if (!ctx.internal) enable_calls(ctx);
  Call call(*this, ctx, out);
  co_return co_await call.run();
}

asio::awaitable<Outcome> Engine::chat_completions(RequestContext& ctx, ClientWriter& out) {
  if (!ctx.internal) enable_calls(ctx);
  Call call(*this, ctx, out);
  co_return co_await call.run();
}

asio::awaitable<Outcome> Call::run() {
  // ---- parse and validate: one parse, kept for the whole request
  Value* req = ctx_.request.value();
  std::optional<Refusal> refused;
  if (!req)
    refused = refuse_unparsable(ctx_.request.parse_error());
  else
    refused = check_request(*req, ctx_.operation, rt_.config().limits);
  if (refused) {
    co_await stream_.reply_error(refused->status, std::move(refused->message), "invalid_request_error",
                                 refused->code);
    co_return o_;
  }
  const Value* model = member(*req, "model");
  ctx_.model = model->get<std::string>();
  pipeline_ = rt_.pipeline_for_model(ctx_.model);
  if (!pipeline_) {
    co_await stream_.reply_error(
        404, "The model '" + ctx_.model + "' does not exist or is not served by this gateway",
        "invalid_request_error", "model_not_found");
    co_return o_;
  }
  ctx_.pipeline = o_.pipeline = pipeline_->name;
  stream_.set_hold_chunks(pipeline_->policy.stream_hold_chunks);
  deadline_ms_ = pipeline_->policy.deadline.count();
  if (const std::string* asked = ctx_.client_headers.get("x-ferry-deadline-ms")) {
    int64_t ms = 0;
    auto [end, ec] = std::from_chars(asked->data(), asked->data() + asked->size(), ms);
    if (ec != std::errc() || end != asked->data() + asked->size() || ms <= 0) {
      co_await stream_.reply_error(
          400, "x-ferry-deadline-ms must be a positive number of milliseconds, not '" + *asked + "'",
          "invalid_request_error", "invalid_deadline");
      co_return o_;
    }
    // A client may shorten the pipeline's deadline, not extend it.
    deadline_ms_ = deadline_ms_ ? std::min(deadline_ms_, ms) : ms;
  }
  if (deadline_ms_) deadline_ = ctx_.received_at + std::chrono::milliseconds(deadline_ms_);

  // What the client asked for, as on_request sees it (ctx_get FERRY_CTX_STREAM).
  read_stream_options();

  // ---- middleware, in pipeline order
  bool proceed = co_await run_on_request();
  if (!proceed) {
    complete();
    co_return o_;
  }
  // A middleware may have shortened the deadline (the host-read tag
  // "deadline_ms", e.g. the timeout plugin's per-model deadlines).
  if (const std::string* tag = ctx_.tag("deadline_ms")) {
    int64_t ms = 0;
    auto [end, ec] = std::from_chars(tag->data(), tag->data() + tag->size(), ms);
    if (ec == std::errc() && end == tag->data() + tag->size() && ms > 0) {
      deadline_ms_ = deadline_ms_ ? std::min(deadline_ms_, ms) : ms;
      deadline_ = ctx_.received_at + std::chrono::milliseconds(deadline_ms_);
    }
  }
  // Middleware may have switched streaming on or off.
  read_stream_options();
  req = ctx_.request.value();
  if (const Value* m = member(*req, "model"); m && m->is_string()) requested_model_ = m->get<std::string>();
  completion_bound_ =
      int_member(*req, "max_completion_tokens").value_or(int_member(*req, "max_tokens").value_or(-1));
  choices_ = std::max<int64_t>(1, int_member(*req, "n").value_or(1));

  // ---- providers, in the router's order; each failure may fail over
  auto order = co_await choose_providers();
  if (!order) {
    complete();
    co_return o_;
  }
  std::vector<Failure> failures;
  const auto& policy = pipeline_->policy;
  bool done = false;
  bool deadline_hit = false;
  // After a context-length error, only providers with a larger window may follow.
  std::optional<int64_t> min_context_window;
  for (const Provider* p : *order) {
    if (min_context_window) {
      auto window = context_window(*p);
      if (!window || *window <= *min_context_window) continue;
    }
    auto& model_state = p->models->for_model(ctx_.model);
    auto& breaker = model_state.breaker;
    attempt_model_ = &model_state;
    for (uint32_t retry = 0;; ++retry) {
      if (std::chrono::steady_clock::now() >= deadline_) {
        deadline_hit = true;
        break;
      }
      ctx_.provider = p->name;
      // Middleware may veto this provider for this attempt (its own limits).
      std::string skipped_by = co_await run_on_attempt(*p);
      if (!skipped_by.empty()) {
        // The host-read tags skip_reason and retry_after_ms say why and for how long.
        const std::string* reason = ctx_.tag("skip_reason");
        const std::string* after_ms = ctx_.tag("retry_after_ms");
        failures.push_back(Failure::provider_skipped(p->name, skipped_by, reason, after_ms));
        last_failure_ = failures.back();
        break;
      }
      if (!breaker.acquire()) {
        // Its half-open probe slots were taken since routing (or it just opened).
        failures.push_back(Failure::circuit_open(p->name));
        break;
      }
      if (retry == 0 && !last_failed_provider_.empty())
        rt_.emit({FERRY_EVENT_PROVIDER_SWITCHED, last_failed_provider_, p->name, ctx_.model, ctx_.pipeline,
                  ctx_.request_id, last_failure_.message});
      if (retry == 0) o_.tried += (o_.tried.empty() ? "" : ",") + p->name;
      ++o_.attempts;
      auto started = std::chrono::steady_clock::now();
      provider_broke_stream_ = false;
      deadline_cut_ = false;
      Result r = Result::kFailed;
      {
        InFlight counted(p->stats.in_flight);
        r = co_await attempt(*p);
      }
      if (ctx_.cancelled() && r != Result::kSuccess) {
        // Abandoned mid-attempt: says nothing about the provider, and there
        // is nobody left to fail over for. (After a whole answer went out, a
        // client closing its end is just a client done reading.)
        co_await stream_.abandon();
        done = true;
        break;
      }
      auto us =
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
      // Client errors say nothing against the provider, nor does running out of
      // the request's own deadline; a stream it broke does.
      bool provider_ok = r == Result::kFailed
                             ? (deadline_cut_ && last_failure_.cls == resilience::ErrorClass::kTimeout) ||
                                   last_failure_.cls == resilience::ErrorClass::kClientError ||
                                   last_failure_.cls == resilience::ErrorClass::kContextLength ||
                                   last_failure_.cls == resilience::ErrorClass::kContentFilter
                             : !provider_broke_stream_;
      p->stats.record(provider_ok, static_cast<uint64_t>(us.count()));
      if (r != Result::kFailed) ewma(model_state.latency_ewma_us, static_cast<uint64_t>(us.count()));
      if (auto changed = breaker.record(provider_ok)) breaker_changed(*p, *changed);
      metrics::Registry::global().add("ferry_upstream_attempts_total{provider=\"" + p->name +
                                          "\",outcome=\"" + (r == Result::kFailed ? "failed" : "ok") + "\"}",
                                      1);
      if (r != Result::kFailed) {
        o_.provider = p->name;
        done = true;
        break;
      }
      Failure f = last_failure_;
      failures.push_back(f);
      last_failed_provider_ = p->name;
      rt_.emit(
          {FERRY_EVENT_PROVIDER_FAILED, p->name, {}, ctx_.model, ctx_.pipeline, ctx_.request_id, f.message});
      if (deadline_cut_ && f.cls == resilience::ErrorClass::kTimeout) {
        deadline_hit = true;  // it was the request's time that ran out, not the provider's
        break;
      }
      auto action = policy.action(f.cls);
      if (action == resilience::Action::kReturn) {
        // The request itself is wrong (or the pipeline says so): another
        // provider would answer the same.
        co_await stream_.reply_failure(f);
        done = true;
        break;
      }
      if (action == resilience::Action::kRetry && retry < policy.max_retries) {
        auto delay = policy.backoff(retry, unit_random());
        if (auto after = resilience::parse_retry_after(f.retry_after)) {
          if (*after > policy.max_retry_after) break;  // too long to wait here: fail over
          delay = std::max(delay, *after);
        }
        if (std::chrono::steady_clock::now() + delay >= deadline_) break;
        log::get().info("[{}] provider '{}' failed ({}); retrying in {} ms", ctx_.request_id, p->name,
                        f.message, delay.count());
        co_await sleep(delay);
        if (ctx_.cancelled()) {
          co_await stream_.abandon();
          done = true;
          break;
        }
        ++o_.retries;
        continue;
      }
      if (f.cls == resilience::ErrorClass::kContextLength) {
        auto window = context_window(*p);
        if (!window) {
          // Without context_window attributes no provider is known to be larger.
          co_await stream_.reply_failure(f);
          done = true;
          break;
        }
        min_context_window = window;
      }
      break;  // fail over
    }
    if (done || deadline_hit) break;
    if (p != order->back())
      log::get().info("[{}] provider '{}' failed ({}); failing over", ctx_.request_id, p->name,
                      last_failure_.message);
  }
  if (!done && o_.status == 0) {
    Failure all = deadline_hit ? deadline_exceeded(deadline_ms_, failures)
                               : all_attempts_failed(pipeline_->name, failures);
    co_await stream_.reply_failure(all);
  }
  if (stream_.client_gone()) o_.status = 499;
  complete();
  co_return o_;
}

asio::awaitable<std::string> Call::run_on_attempt(const Provider& p) {
  if (!chain_.has_attempt_hooks()) co_return std::string();
  HookOutcome r = co_await chain_.on_attempt(p.name);
  if (r.proceeds()) co_return std::string();
  if (r.kind != HookOutcome::Kind::kSkip)
    log::get().warn("[{}] {}; the provider is skipped", ctx_.request_id, r.message);
  co_return r.middleware->name;
}

asio::awaitable<bool> Call::run_on_request() {
  if (ctx_.internal) co_return true;  // a plugin's own call: no middleware
  HookOutcome r = co_await chain_.on_request(pipeline_->middleware);
  if (r.proceeds()) co_return true;
  if (r.kind == HookOutcome::Kind::kRespond) {
    o_.provider = "";
    co_await stream_.respond();
    if (ctx_.respond_status >= 400) o_.error = "answered by middleware '" + r.middleware->name + "'";
    co_return false;
  }
  co_await stream_.reply_error(r.http_status(), std::move(r.message), r.error_type(), "plugin_error");
  co_return false;
}

asio::awaitable<std::optional<std::vector<const Provider*>>> Call::choose_providers() {
  auto now = std::chrono::steady_clock::now();
  // Providers whose circuit is open are not candidates for any strategy.
  std::vector<const Provider*> candidates;
  std::string open;
  std::string drained;
  for (const Provider* p : pipeline_->providers) {
    if (!p->available())
      drained += (drained.empty() ? "" : ", ") + p->name;
    else if (p->models->for_model(ctx_.model).breaker.available(now))
      candidates.push_back(p);
    else
      open += (open.empty() ? "" : ", ") + p->name;
  }

  if (const std::string* pinned = ctx_.client_headers.get("x-ferry-provider")) {
    for (const Provider* p : pipeline_->providers) {
      if (p->name != *pinned) continue;
      if (std::find(candidates.begin(), candidates.end(), p) != candidates.end())
        co_return std::vector<const Provider*>{p};
      if (!p->available())
        co_await stream_.reply_error(503,
                                     "provider '" + p->name + "' is drained or failing its health checks",
                                     "upstream_error", "provider_drained");
      else
        co_await reply_circuit_open(p->name);
      co_return std::nullopt;
    }
    std::string names;
    for (const Provider* p : pipeline_->providers) names += (names.empty() ? "" : ", ") + p->name;
    co_await stream_.reply_error(404,
                                 "provider '" + *pinned + "' (x-ferry-provider) is not part of pipeline '" +
                                     pipeline_->name + "' (available: " + names + ")",
                                 "invalid_request_error", "provider_not_found");
    co_return std::nullopt;
  }
  if (candidates.empty()) {
    if (open.empty()) {
      co_await stream_.reply_error(503,
                                   "every provider of pipeline '" + pipeline_->name +
                                       "' is drained or failing its health checks (" + drained + ")",
                                   "upstream_error", "providers_drained");
    } else {
      co_await reply_circuit_open(open);
    }
    co_return std::nullopt;
  }

  const size_t n = candidates.size();
  std::vector<ferry_candidate> info(n);
  std::vector<const ferry_candidate*> ptrs(n);
  for (size_t i = 0; i < n; ++i) {
    // Latencies are the model's own on this provider: the same provider can
    // serve a small fast model and a large slow one.
    const auto& model_state = candidates[i]->models->for_model(ctx_.model);
    const auto& breaker = model_state.breaker;
    info[i] =
        ferry_candidate{sizeof(ferry_candidate), fv(candidates[i]->name),
                        // Open circuits were left out above; a half-open one is
                        // due a probe, so routers treat it as healthy.
                        breaker.state(now) != resilience::Breaker::State::kOpen ? 1u : 0u,
                        candidates[i]->stats.in_flight.load(std::memory_order_relaxed),
                        model_state.latency_ewma_us.load(std::memory_order_relaxed), breaker.error_rate(now),
                        model_state.ttfb_ewma_us.load(std::memory_order_relaxed),
                        plugin::handle(const_cast<Doc*>(&candidates[i]->attributes))};
    ptrs[i] = &info[i];
  }
  std::vector<size_t> order(n);
  size_t len = 0;
  const auto& router = *pipeline_->router;
  ferry_status st = router.vt().route(router.instance(), plugin::handle(&ctx_), plugin::handle(&ctx_.request),
                                      ptrs.data(), n, order.data(), &len);
  ctx_.request.clear_scratch();
  Doc::clear_thread_scratch();
  if (st == FERRY_RESPOND && ctx_.respond_status) {
    // The router answers itself (ABI 1.1), e.g. no provider can serve this.
    if (ctx_.respond_status >= 400) o_.error = "answered by router '" + pipeline_->router_name + "'";
    co_await stream_.respond();
    co_return std::nullopt;
  }
  std::vector<const Provider*> chosen;
  std::vector<bool> seen(n);
  bool valid = st == FERRY_OK && len <= n;
  for (size_t i = 0; valid && i < len; ++i) {
    valid = order[i] < n && !seen[order[i]];
    if (valid) {
      seen[order[i]] = true;
      chosen.push_back(candidates[order[i]]);
    }
  }
  if (!valid) {
    co_await stream_.reply_error(500,
                                 "router '" + pipeline_->router_name + "' of pipeline '" + pipeline_->name +
                                     "' failed (status " + std::to_string(st) + ")",
                                 "server_error", "plugin_error");
    co_return std::nullopt;
  }
  if (chosen.empty()) {
    co_await stream_.reply_error(503,
                                 "router '" + pipeline_->router_name + "' found no provider for this request",
                                 "upstream_error", "no_provider");
    co_return std::nullopt;
  }
  co_return chosen;
}

void Call::prepare_upstream_request(const Provider& p) {
  // The provider's own name for the model, if it maps it; set on every attempt
  // because the previous one may have been another provider's.
  Value* req = ctx_.request.value();
  auto mapped = p.model_map.find(requested_model_);
  const std::string& want = mapped == p.model_map.end() ? requested_model_ : mapped->second;
  if (auto m = req->find("model");
      m == req->end() || !m->is_string() || m->get_ref<const std::string&>() != want) {
    (*req)["model"] = want;
    ctx_.request.changed();
  }
  // For accounting the host wants usage at the end of every stream; the chunk
  // carrying it is withheld from clients that did not ask for it.
  if (!ctx_.stream || stream_.include_usage()) return;
  Value* so = const_cast<Value*>(member(*req, "stream_options"));
  bool has = so && bool_member(*so, "include_usage");
  if (p.stream_usage && !has) {
    if (!so || !so->is_object()) (*req)["stream_options"] = Value::object();
    (*req)["stream_options"]["include_usage"] = true;
    ctx_.request.changed();
  } else if (!p.stream_usage && has) {
    (*req)["stream_options"].erase("include_usage");
    if ((*req)["stream_options"].empty()) req->erase("stream_options");
    ctx_.request.changed();
  }
}

asio::awaitable<Call::Result> Call::attempt(const Provider& p) {
  prepare_upstream_request(p);
  attempt_started_ = std::chrono::steady_clock::now();
  first_byte_seen_ = false;
  stream_.drop_held();
  Result r;
  if (p.serves())
    r = co_await serve_attempt(p);
  else
    r = co_await http_attempt(p);
  co_return r;
}

asio::awaitable<Call::Result> Call::on_event(SinkEvent& ev, const Provider& p, bool& done) {
  using K = SinkEvent::Kind;
  done = true;
  switch (ev.kind) {
    case K::kError: {
      Failure f = Failure::from_upstream_error(p.name, ev.status, ev.type, ev.message);
      Result r = co_await fail(std::move(f));
      co_return r;
    }
    case K::kResponse: {
      if (ctx_.stream) {
        // The provider answered in one piece: replay it as a stream.
        Doc& whole = ev.doc;
        if (!whole.value() || !whole.value()->is_object()) break;
        for (auto& chunk : response_to_chunks(*whole.value(), true)) {
          bool delivered = co_await deliver_chunk(Doc::from_text(std::move(chunk)));
          if (!delivered) co_return stream_.committed() ? Result::kFinished : Result::kFailed;
        }
        co_await stream_.finish();
        co_return Result::kSuccess;
      }
      Doc& response = ev.doc;
      if (!response.value() || !response.value()->is_object()) break;
      bool delivered = co_await deliver_response(response, p);
      co_return delivered ? Result::kSuccess : Result::kFinished;
    }
    case K::kChunk: {
      if (!ctx_.stream) break;
      done = false;
      bool delivered = co_await deliver_chunk(std::move(ev.doc));
      if (!delivered) {
        done = true;
        co_return stream_.committed() ? Result::kFinished : Result::kFailed;
      }
      if (over_bound_) {
        done = true;
        co_await end_at_bound(p);
        co_return Result::kSuccess;
      }
      co_return Result::kSuccess;
    }
    case K::kDone: {
      if (!ctx_.stream) break;
      co_await stream_.finish();
      co_return Result::kSuccess;
    }
  }
  // An answer of the wrong shape for this request: the provider is broken.
  std::string_view why = ev.kind == K::kChunk  ? "streamed an answer to a non-streaming request"
                         : ev.kind == K::kDone ? "ended without an answer"
                                               : "returned a response that is not a JSON object";
  Failure f = Failure::bad_upstream(p.name, why);
  Result r = co_await fail(std::move(f));
  co_return r;
}

asio::awaitable<Call::Result> Call::serve_attempt(const Provider& p) {
  Sink* sink = ctx_.new_sink();
  const auto& vt = p.plugin->vt();
  ferry_status st = vt.serve(p.plugin->instance(), plugin::handle(&ctx_), plugin::handle(&ctx_.request),
                             plugin::handle(sink));
  ctx_.request.clear_scratch();
  if (st != FERRY_OK && st != FERRY_PAUSE && !sink->has_events()) {
    last_failure_ =
        st == FERRY_ERR_UNSUPPORTED
            ? Failure::unsupported(p.name, ctx_.operation_name())
            : Failure::provider_error(p.name, "failed to serve (status " + std::to_string(st) + ")");
    co_return Result::kFailed;
  }
  for (;;) {
    bool woke = co_await sink->wait(limits(p).read);
    if (!woke) {
      sink->abandon();
      // A named Failure, not a braced temporary: g++ 12 frees temporaries in
      // co_await arguments too early (README, "Working on Ferry").
      Failure f = Failure::upstream_timeout(
          p.name, "produced nothing for " + std::to_string(p.upstream.read.count()) + " ms");
      Result r = co_await fail(std::move(f));
      co_return r;
    }
    sink->drain_into(batch_);
    first_byte(p);
    for (auto& ev : batch_) {
      bool done = false;
      Result r = co_await on_event(ev, p, done);
      if (done || r != Result::kSuccess) {
        sink->abandon();
        co_return r;
      }
    }
    if (stream_.committed()) {
      bool sent = co_await stream_.flush();
      if (!sent) {
        sink->abandon();
        co_return Result::kFinished;
      }
    }
  }
}

asio::awaitable<Call::Result> Call::http_attempt(const Provider& p) {
  const auto& vt = p.plugin->vt();
  plugin::UpstreamBuild build;
  ferry_status st = vt.build_request(p.plugin->instance(), plugin::handle(&ctx_),
                                     plugin::handle(&ctx_.request), plugin::handle(&build));
  ctx_.request.clear_scratch();
  if (st == FERRY_ERR_UNSUPPORTED) {
    // Not this adapter's kind of request (embeddings from a chat-only API).
    last_failure_ = Failure::unsupported(p.name, ctx_.operation_name());
    co_return Result::kFailed;
  }
  if (st != FERRY_OK || build.request.url.empty()) {
    last_failure_ = Failure::provider_error(
        p.name, "could not build the upstream request (status " + std::to_string(st) + ")");
    co_return Result::kFailed;
  }
  for (const auto& h : ctx_.upstream_headers) build.request.headers.set(h.name, h.value);
  if (!build.request.headers.get("accept-encoding")) build.request.headers.set("accept-encoding", "identity");
  if (build.body_doc) build.request.body.assign(build.body_doc->text());

  auto sent = co_await client_.send(build.request, limits(p), ctx_.upstream_cancel_slot());
  if (sent.error) {
    last_failure_ = Failure::from_upstream(sent.error, p.name);
    co_return Result::kFailed;
  }
  auto& ex = *sent.exchange;
  first_byte(p);
  // Nothing but identity was asked for: a compressed answer cannot be read
  // (nor passed on as JSON), so it is a broken upstream, not a client error.
  if (const std::string* encoding = ex.headers().get("content-encoding");
      encoding && !encoding->empty() && !util::iequals(*encoding, "identity")) {
    last_failure_ =
        Failure::bad_upstream(p.name, "answered with Content-Encoding: " + json::printable(*encoding, 40) +
                                          ", which ferryd did not ask for");
    co_return Result::kFailed;
  }
  const std::string* content_type = ex.headers().get("content-type");
  bool sse = ctx_.stream && ex.status() == 200 && vt.parse_event && content_type &&
             content_type->starts_with("text/event-stream");
  Sink* sink = ctx_.new_sink();

  if (!sse) {
    std::string body;
    auto err = co_await ex.read_all(body, options_.max_upstream_body);
    if (err) {
      last_failure_ = Failure::from_upstream(err, p.name);
      co_return Result::kFailed;
    }
    Doc body_doc = Doc::from_text(std::move(body));
    std::string_view text = body_doc.text();
    ferry_http_response resp{sizeof(ferry_http_response), ex.status(), fv(text),
                             plugin::handle(&ex.headers()), plugin::handle(&body_doc)};
    sink->set_source(&body_doc);
    st = vt.parse_response(p.plugin->instance(), plugin::handle(&ctx_), &resp, plugin::handle(sink));
    sink->adopt_source();
    sink->drain_into(batch_);
    if (batch_.empty()) {
      last_failure_ = Failure::bad_upstream(
          p.name, ": its adapter could not read the upstream answer (HTTP " + std::to_string(ex.status()) +
                      ", status " + std::to_string(st) + ")");
      co_return Result::kFailed;
    }
    for (auto& ev : batch_) {
      bool done = false;
      Result r = co_await on_event(ev, p, done);
      if (r == Result::kFailed) {
        if (const std::string* ra = ex.headers().get("retry-after")) last_failure_.retry_after = *ra;
      }
      if (done || r != Result::kSuccess) co_return r;
    }
    // A non-streamed answer whose events did not finish it.
    last_failure_ = Failure::bad_upstream(p.name, "gave an incomplete answer");
    co_return Result::kFailed;
  }

  // Server-Sent Events: forward each chunk as soon as it is parsed.
  ferry_stream* state = nullptr;
  if (vt.stream_open && vt.stream_open(p.plugin->instance(), plugin::handle(&ctx_), &state) != FERRY_OK) {
    last_failure_ = Failure::provider_error(p.name, "could not start reading the stream");
    co_return Result::kFailed;
  }
  struct StreamCloser {
    const Provider& p;
    ferry_stream* state;
    ~StreamCloser() {
      if (p.plugin->vt().stream_close) p.plugin->vt().stream_close(p.plugin->instance(), state);
    }
  } closer{p, state};

  sse::Parser parser;
  std::string bytes;
  ferry_status adapter_status = FERRY_OK;
  for (;;) {
    bytes.clear();
    bool eof = false;
    // The deadline covers the time to the first byte; a started stream gets
    // the provider's own read timeout between events.
    if (stream_.committed()) ex.set_read_timeout(p.upstream.read);
    auto err = co_await ex.read_some(bytes, &eof);
    if (err) {
      Failure f = Failure::from_upstream(err, p.name);
      Result r = co_await fail(std::move(f));
      co_return r;
    }
    bool ok = parser.feed(bytes, [&](sse::Event& e) {
      if (adapter_status != FERRY_OK || sink->terminated()) return;
      Doc data = Doc::from_text(std::move(e.data));
      // data's own text is what the adapter sees, so a pass-through chunk is
      // recognised and kept without a copy (Sink::adopt_source).
      ferry_sse_event ev{sizeof(ferry_sse_event), fv(e.event), fv(data.text()), fv(e.id),
                         plugin::handle(&data)};
      size_t before = sink->pending();
      sink->set_source(&data);
      adapter_status =
          vt.parse_event(p.plugin->instance(), state, plugin::handle(&ctx_), &ev, plugin::handle(sink));
      sink->adopt_source();
      // An event named "error" is an error in every dialect: if the adapter
      // passed it on as a chunk, it ends the attempt here instead.
      if (e.event == "error") sink->error_unless_handled(before, error_event_message(data));
    });
    if (!ok || adapter_status != FERRY_OK) {
      Failure f = !ok ? Failure::bad_upstream(p.name, "sent an oversized stream event")
                      : Failure::bad_upstream(p.name, ": its adapter rejected a stream event (status " +
                                                          std::to_string(adapter_status) + ")");
      Result r = co_await fail(std::move(f));
      co_return r;
    }
    sink->drain_into(batch_);
    for (auto& ev : batch_) {
      bool done = false;
      Result r = co_await on_event(ev, p, done);
      if (r == Result::kSuccess && done && !eof && !cut_at_bound_) {
        // The stream's end usually has the body's last chunk right behind it:
        // read it so the connection goes back to the pool.
        co_await ex.discard_rest(std::chrono::milliseconds(100), 64 * 1024);
      }
      if (done || r != Result::kSuccess) co_return r;
    }
    if (stream_.committed()) {
      bool sent = co_await stream_.flush();
      if (!sent) co_return Result::kFinished;
    }
    if (eof) {
      Failure f = Failure::stream_interrupted(p.name, "closed the stream before it finished");
      Result r = co_await fail(std::move(f));
      co_return r;
    }
  }
}

asio::awaitable<bool> Call::deliver_response(Doc& response, const Provider& p) {
  Value* v = response.value();
  if (auto u = v->find("usage"); u != v->end() && u->is_object()) {
    o_.prompt_tokens = int_field(*u, "prompt_tokens");
    o_.completion_tokens = int_field(*u, "completion_tokens");
  }
  if (chain_.has_response_hooks()) {
    HookOutcome r = co_await chain_.on_response(response);
    if (r.kind == HookOutcome::Kind::kRespond) {
      // The same reply path as on_request's answers (never replayed as a
      // stream here: this is a non-streaming request).
      co_await stream_.respond();
      co_return true;
    }
    if (!r.proceeds()) {
      co_await stream_.reply_error(r.http_status(), std::move(r.message), r.error_type(), "plugin_error");
      co_return true;
    }
  }
  (void)p;
  if (o_.completion_tokens < 0) forwarded_.add(response.text());
  bool sent = co_await stream_.send_answer(response.text());
  if (!sent) stream_.lost_answer();
  co_return true;
}

asio::awaitable<bool> Call::deliver_chunk(Doc chunk) {
  if (stream_.client_gone()) co_return false;
  // Every chunk is checked before it is forwarded, so garbage never reaches a
  // client as if it were an answer. The tree is built only when someone needs
  // it (an on_chunk hook, the usage chunk): a validating scan is much cheaper.
  bool valid = chain_.has_chunk_hooks() ? chunk.value() && chunk.value()->is_object() : chunk.is_object();
  if (!valid) {
    Failure f = Failure::bad_upstream(ctx_.provider, "sent a stream chunk that is not a JSON object");
    if (!stream_.committed()) {
      last_failure_ = std::move(f);
      co_return false;
    }
    co_await stream_.abort(f.message);
    co_return false;
  }
  if (has_usage_object(chunk.text()) && chunk.value()) {
    Value* v = chunk.value();
    if (const Value* u = member(*v, "usage"); u && u->is_object()) {
      o_.prompt_tokens = int_field(*u, "prompt_tokens");
      o_.completion_tokens = int_field(*u, "completion_tokens");
    }
    if (!stream_.include_usage()) {
      auto choices = v->find("choices");
      if (choices == v->end() || (choices->is_array() && choices->empty())) co_return true;  // withheld
      v->erase("usage");
      chunk.changed();
    }
  }
  if (chain_.has_chunk_hooks()) {
    HookOutcome r = co_await chain_.on_chunk(chunk);
    if (!r.proceeds()) {
      if (!stream_.committed()) stream_.start();
      co_await stream_.abort(r.message);
      co_return false;
    }
  }
  ForwardedText with_this = forwarded_;
  with_this.add(chunk.text());
  if (completion_bound_ >= 0 && with_this.past(completion_bound_, choices_)) {
    over_bound_ = true;  // not forwarded: the caller ends the stream at the bound
    co_return true;
  }
  forwarded_ = with_this;
  stream_.send_chunk(chunk.text());
  co_return true;
}

void Call::complete() {
  if (completed_) return;
  completed_ = true;
  // A provider answered (a stream started, or a whole answer came) without
  // saying what it used: accounting gets the host's estimate, never nothing.
  // A stream the client abandoned still cost its prompt and what was sent.
  bool answered = !o_.provider.empty() || stream_.committed();
  if (answered && (o_.prompt_tokens < 0 || o_.completion_tokens < 0) && ctx_.request.value()) {
    if (o_.prompt_tokens < 0) o_.prompt_tokens = estimate_prompt_tokens(*ctx_.request.value());
    if (o_.completion_tokens < 0) o_.completion_tokens = forwarded_.estimate_tokens();
    o_.usage_estimated = true;
  }
  auto latency = stream_.since_start();
  ferry_request_summary s{};
  s.struct_size = sizeof s;
  s.request_id = fv(ctx_.request_id);
  s.pipeline = fv(ctx_.pipeline);
  s.model = fv(ctx_.model);
  s.provider = fv(o_.provider);
  s.providers_tried = fv(o_.tried);
  s.error = fv(o_.error);
  s.status = o_.status;
  s.stream = o_.stream ? 1 : 0;
  s.attempts = o_.attempts;
  s.latency_us = static_cast<uint64_t>(latency.count());
  s.ttfb_us = static_cast<uint64_t>(o_.ttfb.count());
  s.prompt_tokens = o_.prompt_tokens;
  s.completion_tokens = o_.completion_tokens;
  chain_.on_complete(s);
}

}  // namespace ferry::pipeline
