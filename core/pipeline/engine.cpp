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
#include "core/pipeline/answer_forwarder.h"
#include "core/pipeline/client_stream.h"
#include "core/pipeline/failover.h"
#include "core/pipeline/middleware_chain.h"
#include "core/pipeline/request_checks.h"
#include "core/pipeline/upstream_attempt.h"
#include "core/pipeline/usage_estimate.h"
#include "core/plugin/host_api.h"

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

// A positive whole number of milliseconds, the whole of `text`.
std::optional<int64_t> parse_ms(const std::string& text) {
  int64_t ms = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec != std::errc() || end != text.data() + text.size() || ms <= 0) return std::nullopt;
  return ms;
}

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

// One client request on its way through a pipeline (not to be confused with
// ctx_call, a plugin's internal request): checks it, runs the middleware
// chain, asks the router for providers, drives failover and completes. Lives
// in the frame of chat_completions / embeddings. The parts it hands work to
// share its Outcome and its client stream.
class RequestRun final : public FailoverHost {
 public:
  RequestRun(const Runtime& rt, http::UpstreamClient& client, const EngineOptions& options,
             RequestContext& ctx, ClientWriter& out)
      : rt_(rt),
        ctx_(ctx),
        chain_(ctx, options.pause_timeout),
        stream_(ctx, out, o_),
        forwarder_(ctx, chain_, stream_, o_),
        attempt_(ctx, client, options, stream_, forwarder_) {}
  // A request that ends any other way than through run()'s end (an exception)
  // still completes: plugins' on_complete gives back what on_request took.
  ~RequestRun() override {
    if (completed_) return;
    if (o_.status == 0) o_.status = 500;
    if (o_.error.empty()) o_.error = "the request failed inside the gateway";
    complete();
  }
  RequestRun(const RequestRun&) = delete;
  RequestRun& operator=(const RequestRun&) = delete;

  asio::awaitable<Outcome> run();

  // ---- FailoverHost
  bool may_skip() const override { return chain_.has_attempt_hooks(); }
  asio::awaitable<std::string> skipped_by(const Provider& p) override;
  asio::awaitable<AttemptReport> attempt(const Provider& p, ModelState& model) override {
    return attempt_.run(p, model);
  }
  asio::awaitable<void> sleep(std::chrono::milliseconds d) override {
    asio::steady_timer t(ctx_.async->executor(), d);
    co_await t.async_wait(
        asio::bind_cancellation_slot(ctx_.upstream_cancel_slot(), asio::as_tuple(asio::use_awaitable)));
  }
  std::chrono::steady_clock::time_point now() override { return std::chrono::steady_clock::now(); }
  double unit_random() override {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::uniform_real_distribution<double>(0, 1)(rng);
  }
  void emit(const Runtime::Event& event) override { rt_.emit(event); }

 private:
  // What the client asked for, as middleware sees it (ctx_get FERRY_CTX_STREAM).
  void read_stream_options() {
    const Value* req = ctx_.request.value();
    ctx_.stream = o_.stream =
        bool_member(*req, "stream") && ctx_.operation == RequestContext::Operation::kChat && !ctx_.internal;
    const Value* so = member(*req, "stream_options");
    stream_.set_include_usage(so && bool_member(*so, "include_usage"));
  }
  // A pipeline's, a client's or a middleware's deadline of `ms`: each can only
  // shorten the request's.
  void shorten_deadline(int64_t ms) {
    deadline_ms_ = deadline_ms_ ? std::min(deadline_ms_, ms) : ms;
    deadline_ = ctx_.received_at + std::chrono::milliseconds(deadline_ms_);
  }
  asio::awaitable<std::optional<std::vector<const Provider*>>> choose_providers();
  void complete();

  const Runtime& rt_;
  RequestContext& ctx_;
  Outcome o_;  // declared before the parts that write it
  MiddlewareChain chain_;
  ClientStream stream_;
  AnswerForwarder forwarder_;
  UpstreamAttempt attempt_;
  const Pipeline* pipeline_ = nullptr;
  // Until the first byte (the whole answer when not streaming): the sooner of
  // the pipeline's deadline_ms, the client's x-ferry-deadline-ms and a
  // middleware's "deadline_ms" tag.
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  int64_t deadline_ms_ = 0;
  bool completed_ = false;
};

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
  RequestRun run(runtime_, client_, options_, ctx, out);
  co_return co_await run.run();
}

asio::awaitable<Outcome> Engine::chat_completions(RequestContext& ctx, ClientWriter& out) {
  if (!ctx.internal) enable_calls(ctx);
  RequestRun run(runtime_, client_, options_, ctx, out);
  co_return co_await run.run();
}

asio::awaitable<Outcome> RequestRun::run() {
  // ---- admission: refuse what cannot be served, find the pipeline and the
  // deadline. Inline, not a coroutine of its own: a frame costs an
  // allocation per request. One parse, kept for the whole request.
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
  // check_request made sure "model" is a string.
  ctx_.model = member(*req, "model")->get<std::string>();
  pipeline_ = rt_.pipeline_for_model(ctx_.model);
  if (!pipeline_) {
    co_await stream_.reply_error(
        404, "The model '" + ctx_.model + "' does not exist or is not served by this gateway",
        "invalid_request_error", "model_not_found");
    co_return o_;
  }
  ctx_.pipeline = o_.pipeline = pipeline_->name;
  if (pipeline_->policy.deadline.count()) shorten_deadline(pipeline_->policy.deadline.count());
  if (const std::string* asked = ctx_.client_headers.get("x-ferry-deadline-ms")) {
    std::optional<int64_t> ms = parse_ms(*asked);
    if (!ms) {
      co_await stream_.reply_error(
          400, "x-ferry-deadline-ms must be a positive number of milliseconds, not '" + *asked + "'",
          "invalid_request_error", "invalid_deadline");
      co_return o_;
    }
    // A client may shorten the pipeline's deadline, not extend it.
    shorten_deadline(*ms);
  }
  read_stream_options();

  // ---- middleware, in pipeline order (a plugin's own call has none)
  if (!ctx_.internal) {
    HookOutcome r = co_await chain_.on_request(pipeline_->middleware);
    if (r.kind == HookOutcome::Kind::kRespond) {
      co_await stream_.respond();
      if (ctx_.respond_status >= 400) o_.error = "answered by middleware '" + r.middleware->name + "'";
    } else if (!r.proceeds()) {
      co_await stream_.reply_error(r.http_status(), std::move(r.message), r.error_type(), "plugin_error");
    }
    if (!r.proceeds()) {
      complete();
      co_return o_;
    }
  }
  // A middleware may have shortened the deadline (ctx_set_deadline, e.g. the
  // timeout plugin's per-model deadlines; the tag "deadline_ms" from 1.2 plugins).
  if (ctx_.middleware_deadline_ms > 0)
    shorten_deadline(static_cast<int64_t>(std::min<uint64_t>(ctx_.middleware_deadline_ms, INT64_MAX)));
  else if (const std::string* tag = ctx_.tag("deadline_ms"))
    if (std::optional<int64_t> ms = parse_ms(*tag)) shorten_deadline(*ms);
  // Middleware may have switched streaming on or off.
  read_stream_options();
  req = ctx_.request.value();
  std::string requested_model;
  if (const Value* m = member(*req, "model"); m && m->is_string()) requested_model = m->get<std::string>();
  forwarder_.set_bound(
      requested_model,
      int_member(*req, "max_completion_tokens").value_or(int_member(*req, "max_tokens").value_or(-1)),
      std::max<int64_t>(1, int_member(*req, "n").value_or(1)));
  attempt_.set_request(std::move(requested_model), deadline_);
  stream_.set_hold_chunks(pipeline_->policy.stream_hold_chunks);
  // Same-dialect pass-through (sdk/ABI.md R21): the client's body may go
  // upstream only as middleware left it, and the upstream's bytes come back
  // only when no middleware reads or edits the answer on its way.
  ctx_.native_body_valid = !ctx_.dialect.empty() && ctx_.request.generation() == ctx_.decoded_generation;
  attempt_.allow_native(stream_.accepts_native() && pipeline_->policy.stream_hold_chunks == 0 &&
                        !(ctx_.stream ? chain_.has_chunk_hooks() : chain_.has_response_hooks()));

  // ---- providers, in the router's order; each failure may fail over
  auto order = co_await choose_providers();
  if (!order) {
    complete();
    co_return o_;
  }
  Failover failover(*this, ctx_,
                    Failover::Request{pipeline_->policy, pipeline_->name, deadline_, deadline_ms_}, o_);
  FailoverEnd end = co_await failover.run(*order);
  switch (end) {
    case FailoverEnd::kAnswered: break;
    case FailoverEnd::kAbandoned: co_await stream_.abandon(); break;
    case FailoverEnd::kReturn: co_await stream_.reply_failure(failover.failure()); break;
    case FailoverEnd::kExhausted:
      if (o_.status == 0) co_await stream_.reply_failure(failover.failure());
      break;
  }
  if (stream_.client_gone()) o_.status = 499;
  complete();
  co_return o_;
}

asio::awaitable<std::string> RequestRun::skipped_by(const Provider& p) {
  HookOutcome r = co_await chain_.on_attempt(p.name);
  if (r.proceeds()) co_return std::string();
  if (r.kind != HookOutcome::Kind::kSkip)
    log::get().warn("[{}] {}; the provider is skipped", ctx_.request_id, r.message);
  co_return r.middleware->name;
}

asio::awaitable<std::optional<std::vector<const Provider*>>> RequestRun::choose_providers() {
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
      else {
        Failure f = circuits_open(p->name, ctx_.model);
        co_await stream_.reply_failure(f);
      }
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
      Failure f = circuits_open(open, ctx_.model);
      co_await stream_.reply_failure(f);
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

void RequestRun::complete() {
  if (completed_) return;
  completed_ = true;
  // A provider answered (a stream started, or a whole answer came) without
  // saying what it used: accounting gets the host's estimate, never nothing.
  // A stream the client abandoned still cost its prompt and what was sent.
  bool answered = !o_.provider.empty() || stream_.committed();
  if (answered && (o_.prompt_tokens < 0 || o_.completion_tokens < 0) && ctx_.request.value()) {
    if (o_.prompt_tokens < 0) o_.prompt_tokens = estimate_prompt_tokens(*ctx_.request.value());
    if (o_.completion_tokens < 0) o_.completion_tokens = forwarder_.forwarded().estimate_tokens();
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
