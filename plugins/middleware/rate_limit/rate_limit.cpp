// rate-limit: requests and tokens per minute, per API key, user, team, model
// or for everyone, on the shared-state service, so that several ferryd
// instances on one Redis admit exactly the configured number together.
//
// Tokens are estimated before the call (prompt + max_tokens) and corrected
// from the real usage once the answer is complete, streamed or not.
#include <atomic>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Context;
using ferry::sdk::Json;
using ferry::sdk::LogLevel;
using ferry::sdk::StateOp;
using ferry::sdk::StateResult;
using ferry::sdk::Status;

enum class Scope { kGlobal, kKey, kUser, kTeam, kModel, kProvider };
enum class Unit { kRequests, kTokens };

struct Rule {
  Scope scope;
  std::string scope_name;
  std::string provider;  // per = "provider": only this one (empty: each provider)
  double requests = 0;   // per window; 0: no request limit
  double tokens = 0;
};

struct Settings {
  bool sliding_window = true;  // else token bucket
  uint64_t window_ms = 60'000;
  bool queue = false;  // on limit: wait for room instead of 429
  uint64_t max_queue_ms = 10'000;
  int64_t max_queued = 1000;
  bool fail_open = true;
  int64_t default_completion_tokens = 256;
  std::vector<Rule> rules;
};

// One counter this request takes from.
struct Check {
  std::string key;
  Unit unit;
  double amount;
  double limit;
  bool taken = false;
  double remaining = -1;
  std::string provider{};  // provider-scoped checks: whose attempt took it
};

// Who the request is, for a scope; empty when it cannot be told (the rule is
// then skipped for this request).
std::string identity(Context& ctx, const Json& req, Scope scope) {
  switch (scope) {
    case Scope::kGlobal: return "all";
    case Scope::kModel: return std::string(ctx.model());
    case Scope::kProvider: return {};  // checked per attempt, in on_attempt
    case Scope::kTeam: return ferry::sdk::requester(ctx, req, "team");
    case Scope::kUser: return ferry::sdk::requester(ctx, req, "user");
    case Scope::kKey: return ferry::sdk::requester(ctx, req, "key");
  }
  return {};
}

class RateLimit;

class Limiter final : public ferry::sdk::Filter {
 public:
  explicit Limiter(RateLimit& owner) : owner_(owner) {}
  Status on_request(Context& ctx, Json& req) override;
  Status on_attempt(Context& ctx, std::string_view provider) override;
  void on_complete(Context& ctx, const ferry_request_summary& s) override;

 private:
  Status check(Context& ctx);
  Status check_attempt(Context& ctx);
  Status refuse(Context& ctx, size_t i, const StateResult& r);
  void give_back();
  void set_headers(Context& ctx);

  RateLimit& owner_;
  std::vector<Check> checks_;
  size_t attempt_begin_ = 0;  // checks_[attempt_begin_..] belong to the attempt being decided
  int64_t estimated_tokens_ = 0;
  uint64_t started_ns_ = 0;
  bool queued_ = false;
};

class RateLimit final : public ferry::sdk::Middleware {
 public:
  // The hooks the host calls are the ones Limiter overrides.
  using filter_type = Limiter;
  explicit RateLimit(ferry::sdk::Config& c) {
    c.reject_unknown_keys({"algorithm", "window_ms", "on_limit", "max_queue_ms", "max_queued",
                           "on_unavailable", "default_completion_tokens", "limits"});
    auto algorithm = c.string("/algorithm", "sliding-window");
    if (algorithm != "sliding-window" && algorithm != "token-bucket")
      c.error("/algorithm", "must be \"sliding-window\" or \"token-bucket\", not \"" + algorithm + "\"");
    s_.sliding_window = algorithm == "sliding-window";
    s_.window_ms = static_cast<uint64_t>(c.integer("/window_ms", 60'000, 1'000, 86'400'000));
    auto on_limit = c.string("/on_limit", "reject");
    if (on_limit != "reject" && on_limit != "queue")
      c.error("/on_limit", "must be \"reject\" (429) or \"queue\" (wait for room), not \"" + on_limit + "\"");
    s_.queue = on_limit == "queue";
    s_.max_queue_ms = static_cast<uint64_t>(c.integer("/max_queue_ms", 10'000, 1, 25'000));
    s_.max_queued = c.integer("/max_queued", 1000, 1, 1'000'000);
    auto unavailable = c.string("/on_unavailable", "open");
    if (unavailable != "open" && unavailable != "closed")
      c.error("/on_unavailable", "must be \"open\" (admit) or \"closed\" (503), not \"" + unavailable + "\"");
    s_.fail_open = unavailable == "open";
    s_.default_completion_tokens = c.integer("/default_completion_tokens", 256, 0, 10'000'000);

    size_t n = c.json().size("/limits");
    if (n == 0) c.error("/limits", "is required: e.g. [{ per = \"key\", requests_per_minute = 60 }]");
    for (size_t i = 0; i < n; ++i) {
      std::string at = "/limits/" + std::to_string(i);
      Rule r;
      r.scope_name = c.string(at + "/per", "key");
      static const std::pair<const char*, Scope> kScopes[] = {
          {"global", Scope::kGlobal}, {"key", Scope::kKey},     {"user", Scope::kUser},
          {"team", Scope::kTeam},     {"model", Scope::kModel}, {"provider", Scope::kProvider}};
      bool known = false;
      for (auto [name, scope] : kScopes)
        if (r.scope_name == name) {
          r.scope = scope;
          known = true;
        }
      if (!known)
        c.error(at + "/per",
                "must be one of global, key, user, team, model, provider; not \"" + r.scope_name + "\"");
      r.provider = c.string(at + "/provider");
      if (!r.provider.empty() && r.scope != Scope::kProvider)
        c.error(at + "/provider", "only applies to per = \"provider\"");
      r.requests = c.number(at + "/requests_per_minute", 0, 0, 1e12);
      r.tokens = c.number(at + "/tokens_per_minute", 0, 0, 1e15);
      if (r.requests == 0 && r.tokens == 0)
        c.error(at, "needs requests_per_minute or tokens_per_minute (or both)");
      for (const auto& k : c.keys(at))
        if (k != "per" && k != "requests_per_minute" && k != "tokens_per_minute" && k != "provider")
          c.error(at + "/" + k,
                  "unknown key '" + k + "' (expected per, provider, requests_per_minute, tokens_per_minute)");
      s_.rules.push_back(r);
    }
  }

  std::unique_ptr<ferry::sdk::Filter> new_filter(Context&) override {
    return std::make_unique<Limiter>(*this);
  }

  const Settings& settings() const { return s_; }
  // The limit per minute scaled to the configured window.
  double per_window(double per_minute) const {
    return per_minute * static_cast<double>(s_.window_ms) / 60'000.0;
  }
  StateOp take(const Check& c) const {
    if (s_.sliding_window) return StateOp::take_window(c.key, c.amount, c.limit, s_.window_ms);
    return StateOp::take_bucket(c.key, c.amount, c.limit,
                                c.limit * 1000.0 / static_cast<double>(s_.window_ms));
  }
  std::atomic<int64_t> queued{0};

 private:
  Settings s_;
};

Status Limiter::on_request(Context& ctx, Json& req) {
  const auto& s = owner_.settings();
  started_ns_ = ferry::sdk::monotonic_ns();
  int64_t max_tokens = req.integer("/max_completion_tokens")
                           .value_or(req.integer("/max_tokens").value_or(s.default_completion_tokens));
  if (ctx.embeddings()) max_tokens = 0;  // embeddings produce no completion tokens
  estimated_tokens_ = ferry::sdk::estimate_prompt_tokens(req) + std::max<int64_t>(0, max_tokens);
  for (const auto& rule : s.rules) {
    std::string who = identity(ctx, req, rule.scope);
    if (who.empty()) continue;
    std::string base = rule.scope_name + ":" + who + ":";
    if (rule.requests > 0)
      checks_.push_back({base + "rpm", Unit::kRequests, 1, owner_.per_window(rule.requests)});
    if (rule.tokens > 0)
      checks_.push_back({base + "tpm", Unit::kTokens, static_cast<double>(estimated_tokens_),
                         owner_.per_window(rule.tokens)});
  }
  return check(ctx);
}

// Takes from every counter at once (one round trip on Redis). A refusal by
// one gives back what the others took, so a refused request costs no one
// anything.
Status Limiter::check(Context& ctx) {
  if (checks_.empty()) return Status::kContinue;
  std::vector<StateOp> ops;
  for (const auto& c : checks_) ops.push_back(owner_.take(c));
  return ctx.state_all_then(std::move(ops), [this](Context& ctx, const std::vector<StateResult>& rs) {
    std::optional<size_t> refused;
    bool unavailable = false;
    for (size_t i = 0; i < rs.size(); ++i) {
      Check& c = checks_[i];
      if (!rs[i].ok()) {
        unavailable = true;
      } else if (rs[i].applied) {
        c.taken = true;
        c.remaining = rs[i].value;
      } else if (!refused) {
        refused = i;
      }
    }
    if (unavailable) {
      ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_ratelimit_state_errors_total", 1);
      if (!owner_.settings().fail_open) {
        give_back();
        ctx.log(LogLevel::kWarn, "state backend unavailable: refusing (fail closed)");
        return ctx.respond_error(503, "rate_limit_unavailable",
                                 "rate limits cannot be checked right now (state backend unavailable)",
                                 "rate_limit_unavailable");
      }
      ctx.log(LogLevel::kWarn,
              "state backend unavailable: admitting without the limits it could not check "
              "(fail open)");
    }
    if (refused) return refuse(ctx, *refused, rs[*refused]);
    if (queued_) {
      queued_ = false;
      owner_.queued.fetch_sub(1);
    }
    set_headers(ctx);
    return Status::kContinue;
  });
}

Status Limiter::refuse(Context& ctx, size_t i, const StateResult& r) {
  const auto& s = owner_.settings();
  const Check& c = checks_[i];
  uint64_t waited_ms = (ferry::sdk::monotonic_ns() - started_ns_) / 1'000'000;
  bool can_wait = s.queue && r.retry_after_ms > 0 && waited_ms + r.retry_after_ms <= s.max_queue_ms;
  if (can_wait && !queued_) {
    if (owner_.queued.fetch_add(1) >= s.max_queued) {
      owner_.queued.fetch_sub(1);
      can_wait = false;
    } else {
      queued_ = true;
    }
  }
  if (can_wait) {
    // Give everything back and try the whole set again once the backend says
    // there will be room (a timer, not a thread).
    give_back();
    ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_ratelimit_queued_total", 1);
    ctx.schedule(r.retry_after_ms * 1'000'000, [this, c = ctx.handle()](bool cancelled) {
      if (cancelled) return;
      Context ctx(c);
      Status st = check(ctx);
      if (st != Status::kPause) ctx.resume(st);
    });
    return Status::kPause;
  }
  if (queued_) {
    queued_ = false;
    owner_.queued.fetch_sub(1);
  }
  give_back();
  ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_ratelimit_rejected_total", 1);
  const char* what = c.unit == Unit::kRequests ? "requests" : "tokens";
  uint64_t retry_s = (r.retry_after_ms + 999) / 1000;
  std::string kind = c.unit == Unit::kRequests ? "requests" : "tokens";
  ctx.set_response_header("x-ratelimit-limit-" + kind, std::to_string(static_cast<int64_t>(c.limit)));
  ctx.set_response_header("x-ratelimit-remaining-" + kind, std::to_string(static_cast<int64_t>(r.value)));
  if (r.retry_after_ms) {
    ctx.set_response_header("retry-after", std::to_string(std::max<uint64_t>(retry_s, 1)));
    ctx.set_response_header("retry-after-ms", std::to_string(r.retry_after_ms));
    ctx.set_response_header("x-ratelimit-reset-" + kind, std::to_string(r.retry_after_ms) + "ms");
  }
  std::string message = "rate limit exceeded: " + c.key.substr(0, c.key.rfind(':')) + " is limited to " +
                        std::to_string(static_cast<int64_t>(c.limit)) + " " + what + " per " +
                        std::to_string(s.window_ms / 1000) + " s";
  if (c.amount > c.limit)
    message += "; this request alone needs " + std::to_string(static_cast<int64_t>(c.amount)) + " tokens";
  else if (r.retry_after_ms)
    message += "; retry in " + std::to_string(r.retry_after_ms) + " ms";
  return ctx.respond_error(429, "rate_limit_error", message, "rate_limit_exceeded");
}

void Limiter::give_back() {
  for (auto& c : checks_)
    if (c.taken) {
      ferry::sdk::state_call(owner_.take({c.key, c.unit, -c.amount, c.limit}), nullptr);
      c.taken = false;
    }
}

// OpenAI's header names, for the tightest limit of each unit.
void Limiter::set_headers(Context& ctx) {
  const Check* tightest[2] = {nullptr, nullptr};
  for (const auto& c : checks_) {
    if (!c.taken) continue;
    auto& t = tightest[c.unit == Unit::kRequests ? 0 : 1];
    if (!t || c.remaining < t->remaining) t = &c;
  }
  for (int u = 0; u < 2; ++u) {
    if (!tightest[u]) continue;
    std::string kind = u == 0 ? "requests" : "tokens";
    ctx.set_response_header("x-ratelimit-limit-" + kind,
                            std::to_string(static_cast<int64_t>(tightest[u]->limit)));
    ctx.set_response_header("x-ratelimit-remaining-" + kind,
                            std::to_string(static_cast<int64_t>(std::floor(tightest[u]->remaining))));
  }
}

// Limits per provider are taken per attempt: a provider over its limit is
// skipped (the host tries the next candidate), and the request gets 429 only
// when every candidate is over.
Status Limiter::on_attempt(Context& ctx, std::string_view provider) {
  attempt_begin_ = checks_.size();
  for (const auto& rule : owner_.settings().rules) {
    if (rule.scope != Scope::kProvider || (!rule.provider.empty() && rule.provider != provider)) continue;
    std::string base = "provider:" + std::string(provider) + ":";
    if (rule.requests > 0)
      checks_.push_back({base + "rpm", Unit::kRequests, 1, owner_.per_window(rule.requests), false, -1,
                         std::string(provider)});
    if (rule.tokens > 0)
      checks_.push_back({base + "tpm", Unit::kTokens, static_cast<double>(estimated_tokens_),
                         owner_.per_window(rule.tokens), false, -1, std::string(provider)});
  }
  if (attempt_begin_ == checks_.size()) return Status::kContinue;  // no limit for this provider
  return check_attempt(ctx);
}

Status Limiter::check_attempt(Context& ctx) {
  std::vector<StateOp> ops;
  for (size_t i = attempt_begin_; i < checks_.size(); ++i) ops.push_back(owner_.take(checks_[i]));
  return ctx.state_all_then(std::move(ops), [this](Context& ctx, const std::vector<StateResult>& rs) {
    std::optional<size_t> refused;  // index into checks_
    bool unavailable = false;
    for (size_t k = 0; k < rs.size(); ++k) {
      Check& c = checks_[attempt_begin_ + k];
      if (!rs[k].ok())
        unavailable = true;
      else if (rs[k].applied)
        c.taken = true;
      else if (!refused)
        refused = attempt_begin_ + k;
    }
    bool skip = refused || (unavailable && !owner_.settings().fail_open);
    if (!skip) return Status::kContinue;
    // Give back what this attempt took from the provider's other counters.
    for (size_t k = attempt_begin_; k < checks_.size(); ++k)
      if (checks_[k].taken) {
        ferry::sdk::state_call(
            owner_.take({checks_[k].key, checks_[k].unit, -checks_[k].amount, checks_[k].limit}), nullptr);
        checks_[k].taken = false;
      }
    const Check& c = checks_[refused.value_or(attempt_begin_)];
    ferry::sdk::metric(FERRY_METRIC_COUNTER,
                       "ferry_ratelimit_provider_skips_total{provider=\"" + c.provider + "\"}", 1);
    std::string what = c.unit == Unit::kRequests ? "requests" : "tokens";
    std::string reason = refused
                             ? "over its limit of " + std::to_string(static_cast<int64_t>(c.limit)) + " " +
                                   what + " per " + std::to_string(owner_.settings().window_ms / 1000) + " s"
                             : std::string("rate limits cannot be checked (state backend unavailable)");
    return ctx.skip(reason, refused ? rs[*refused - attempt_begin_].retry_after_ms : 0);
  });
}

// Token counters were charged an estimate: now that the usage is known,
// charge the difference (or give it back), past the limit if need be.
void Limiter::on_complete(Context&, const ferry_request_summary& s) {
  if (queued_) owner_.queued.fetch_sub(1);
  int64_t actual = 0;
  if (s.prompt_tokens >= 0) actual += s.prompt_tokens;
  if (s.completion_tokens >= 0) actual += s.completion_tokens;
  double delta = static_cast<double>(actual - estimated_tokens_);
  std::string answered(ferry::sdk::sv(s.provider));
  std::set<std::string> credited;  // counters already given the real usage
  // Latest first: of the answering provider's attempts only the last one
  // answered (once per counter); failed attempts used none of their tokens.
  for (auto it = checks_.rbegin(); it != checks_.rend(); ++it) {
    const Check& c = *it;
    if (!c.taken || c.unit != Unit::kTokens) continue;
    double d = delta;
    if (!c.provider.empty()) {
      bool answered_here = c.provider == answered && credited.insert(c.key).second;
      if (!answered_here) d = -c.amount;
    }
    if (d != 0) ferry::sdk::state_call(owner_.take({c.key, c.unit, d, c.limit}).force(), nullptr);
  }
}

}  // namespace

FERRY_MIDDLEWARE_PLUGIN(RateLimit, "rate-limit", "1.0.0")
