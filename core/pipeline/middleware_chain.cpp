#include "core/pipeline/middleware_chain.h"

#include <optional>

#include "core/plugin/host_api.h"

namespace ferry::pipeline {

namespace asio = boost::asio;

namespace {

ferry_view fv(std::string_view s) { return ferry_view{s.data(), s.size()}; }

}  // namespace

asio::awaitable<HookOutcome> MiddlewareChain::on_request(const std::vector<const Middleware*>& middleware) {
  filters_.reserve(middleware.size());
  for (const Middleware* m : middleware) {
    ActiveFilter f{m};
    const auto& vt = m->plugin->vt();
    if (vt.filter_new) {
      ferry_status st = vt.filter_new(m->plugin->instance(), plugin::handle(&ctx_), &f.filter);
      if (st != FERRY_OK) {
        HookOutcome failed{
            HookOutcome::Kind::kFailed, m,
            "middleware '" + m->name + "' failed to start (status " + std::to_string(st) + ")"};
        co_return failed;
      }
    }
    filters_.push_back(f);
    if (vt.on_request) hooks_ |= 1u << static_cast<unsigned>(Hook::kRequest);
    if (vt.on_attempt) hooks_ |= 1u << static_cast<unsigned>(Hook::kAttempt);
    if (vt.on_response) hooks_ |= 1u << static_cast<unsigned>(Hook::kResponse);
    if (vt.on_chunk) hooks_ |= 1u << static_cast<unsigned>(Hook::kChunk);
    if (!vt.on_request) continue;
    HookOutcome r = co_await drive(Hook::kRequest, &ctx_.request, std::string_view(), filters_.size() - 1,
                                   filters_.size());
    if (!r.proceeds()) co_return r;
  }
  co_return HookOutcome{};
}

// Plain functions returning the driver's awaitable: no coroutine frame of
// their own.
asio::awaitable<HookOutcome> MiddlewareChain::on_attempt(std::string_view provider) {
  return drive(Hook::kAttempt, nullptr, provider, 0, filters_.size());
}

asio::awaitable<HookOutcome> MiddlewareChain::on_response(json::Doc& response) {
  return drive(Hook::kResponse, &response, std::string_view(), 0, filters_.size());
}

asio::awaitable<HookOutcome> MiddlewareChain::on_chunk(json::Doc& chunk) {
  return drive(Hook::kChunk, &chunk, std::string_view(), 0, filters_.size());
}

asio::awaitable<HookOutcome> MiddlewareChain::drive(Hook hook, json::Doc* doc, std::string_view provider,
                                                    size_t first, size_t last) {
  const bool reverse = hook == Hook::kResponse || hook == Hook::kChunk;
  for (size_t i = first; i < last; ++i) {
    const ActiveFilter& f = filters_[reverse ? last - 1 - (i - first) : i];
    ferry_status st = FERRY_CONTINUE;
    if (!call(f, hook, doc, provider, st)) continue;
    // The common case costs no wait: only a PAUSE suspends.
    bool timed_out = false;
    if (st == FERRY_PAUSE) {
      std::optional<ferry_status> resumed = co_await ctx_.async->wait_resume(pause_timeout_);
      timed_out = !resumed;
      st = resumed ? *resumed : FERRY_ERR_INTERNAL;
    }
    HookOutcome r = classify(f, hook, st, timed_out, doc);
    if (!r.proceeds()) co_return r;
  }
  co_return HookOutcome{};
}

bool MiddlewareChain::call(const ActiveFilter& f, Hook hook, json::Doc* doc, std::string_view provider,
                           ferry_status& st) {
  const auto& vt = f.middleware->plugin->vt();
  ferry_instance* instance = f.middleware->plugin->instance();
  ferry_ctx* ctx = plugin::handle(&ctx_);
  switch (hook) {
    case Hook::kRequest:
      if (!vt.on_request) return false;
      st = vt.on_request(instance, f.filter, ctx, plugin::handle(doc));
      break;
    case Hook::kAttempt:
      if (!vt.on_attempt) return false;
      st = vt.on_attempt(instance, f.filter, ctx, fv(provider));
      break;
    case Hook::kResponse:
      if (!vt.on_response) return false;
      st = vt.on_response(instance, f.filter, ctx, plugin::handle(doc));
      break;
    case Hook::kChunk:
      if (!vt.on_chunk) return false;
      st = vt.on_chunk(instance, f.filter, ctx, plugin::handle(doc));
      break;
  }
  if (doc) doc->clear_scratch();
  return true;
}

HookOutcome MiddlewareChain::classify(const ActiveFilter& f, Hook hook, ferry_status st, bool timed_out,
                                      json::Doc* doc) const {
  using K = HookOutcome::Kind;
  static constexpr const char* kNames[] = {"on_request", "on_attempt", "on_response", "on_chunk"};
  const char* name = kNames[static_cast<unsigned>(hook)];
  // A document a middleware edited must still be a JSON object.
  bool doc_ok = !doc || (doc->value() && doc->value()->is_object());
  if (st == FERRY_CONTINUE && !timed_out) {
    if (doc_ok) return HookOutcome{};
    if (hook == Hook::kRequest)
      return HookOutcome{K::kFailed, f.middleware,
                         "middleware '" + f.middleware->name + "' left the request without a JSON object"};
  }
  if (st == FERRY_RESPOND && ctx_.respond_status && (hook == Hook::kRequest || hook == Hook::kResponse))
    return HookOutcome{K::kRespond, f.middleware, {}};
  if (st == FERRY_SKIP && hook == Hook::kAttempt) return HookOutcome{K::kSkip, f.middleware, {}};
  if (timed_out)
    return HookOutcome{K::kTimedOut, f.middleware,
                       "middleware '" + f.middleware->name + "' paused in " + name +
                           " and did not resume within " + std::to_string(pause_timeout_.count()) + " ms"};
  return HookOutcome{
      K::kFailed, f.middleware,
      "middleware '" + f.middleware->name + "' failed in " + name + " (status " + std::to_string(st) + ")"};
}

void MiddlewareChain::on_complete(const ferry_request_summary& summary) {
  for (auto it = filters_.rbegin(); it != filters_.rend(); ++it) {
    const auto& vt = it->middleware->plugin->vt();
    if (vt.on_complete)
      vt.on_complete(it->middleware->plugin->instance(), it->filter, plugin::handle(&ctx_), &summary);
  }
  free_filters();
}

void MiddlewareChain::free_filters() {
  for (auto& f : filters_) {
    if (f.filter && f.middleware->plugin->vt().filter_free)
      f.middleware->plugin->vt().filter_free(f.middleware->plugin->instance(), f.filter);
    f.filter = nullptr;
  }
}

}  // namespace ferry::pipeline
