// budget: spend limits in US dollars per API key, user, team or for everyone,
// over a day, a month or for good, priced from a table in TOML.
//
// Exact under concurrency: before the call each request reserves its largest
// possible cost with one atomic add-if-within-limit on the shared state; when
// it completes, the reservation is replaced by the cost of its real usage.
// Concurrent requests therefore never spend past a budget together, on one
// ferryd or on several sharing Redis. With the sqlite backend the ledger
// survives restarts.
//
// "Largest possible" holds for any prompt and any upstream: the prompt is
// bounded by its bytes (a token is at least one byte) plus a fixed allowance
// per image; the answer by max_tokens, which is set on the request when the
// client left it out, and which the host enforces on a stream that ignores it.
// A charge is never more than its reservation: an upstream that bills past
// max_tokens anyway is logged and counted as an overrun, not spent.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <optional>
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

enum class Scope { kGlobal, kKey, kUser, kTeam };
enum class Period { kDay, kMonth, kTotal };

struct Rule {
  Scope scope;
  std::string scope_name;
  double usd;
};

struct Price {
  double input = 0;  // USD per million tokens
  double output = 0;
};

struct Charge {
  std::string key;
  double limit;
  bool taken = false;
};

std::string format_usd(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  std::string s = buf;
  while (s.size() > 4 && s.back() == '0') s.pop_back();  // keep at least 2 decimals
  return s;
}

std::string identity(Context& ctx, const Json& req, Scope scope) {
  switch (scope) {
    case Scope::kGlobal: return "all";
    case Scope::kTeam: return ferry::sdk::requester(ctx, req, "team");
    case Scope::kUser: return ferry::sdk::requester(ctx, req, "user");
    case Scope::kKey: return ferry::sdk::requester(ctx, req, "key");
  }
  return {};
}

class Budget;

class Spend final : public ferry::sdk::Filter {
 public:
  explicit Spend(Budget& owner) : owner_(owner) {}
  Status on_request(Context& ctx, Json& req) override;
  void on_complete(Context& ctx, const ferry_request_summary& s) override;

 private:
  Status reserve(Context& ctx);
  void give_back();

  Budget& owner_;
  std::vector<Charge> charges_;
  Price price_;
  double reserved_ = 0;
  uint64_t ttl_ms_ = 0;
};

class Budget final : public ferry::sdk::Middleware {
 public:
  // The hooks the host calls are the ones Spend overrides.
  using filter_type = Spend;
  explicit Budget(ferry::sdk::Config& c) {
    c.reject_unknown_keys(
        {"period", "prices", "budgets", "on_unavailable", "default_completion_tokens", "image_tokens"});
    auto period = c.string("/period", "month");
    if (period == "day")
      period_ = Period::kDay;
    else if (period == "month")
      period_ = Period::kMonth;
    else if (period == "total")
      period_ = Period::kTotal;
    else
      c.error("/period", "must be \"day\", \"month\" or \"total\", not \"" + period + "\"");
    period_name_ = period;
    auto unavailable = c.string("/on_unavailable", "closed");
    if (unavailable != "open" && unavailable != "closed")
      c.error("/on_unavailable", "must be \"closed\" (503) or \"open\" (admit), not \"" + unavailable + "\"");
    fail_open_ = unavailable == "open";
    default_completion_tokens_ = c.integer("/default_completion_tokens", 256, 1, 10'000'000);
    image_tokens_ = c.integer("/image_tokens", 3'000, 0, 1'000'000);

    if (c.json().type("/prices") != FERRY_JSON_OBJECT)
      c.error("/prices",
              "is required: model = { input = USD, output = USD } per million tokens (\"*\" for any)");
    for (const auto& model : c.keys("/prices")) {
      std::string at = "/prices/";
      for (char ch : model) at += ch == '~' ? "~0" : ch == '/' ? "~1" : std::string(1, ch);
      for (const auto& k : c.keys(at))
        if (k != "input" && k != "output")
          c.error(at + "/" + k, "unknown key '" + k + "' (expected input, output)");
      prices_[model] = Price{c.number(at + "/input", 0, 0, 1e6), c.number(at + "/output", 0, 0, 1e6)};
    }
    size_t n = c.json().size("/budgets");
    if (n == 0) c.error("/budgets", "is required: e.g. [{ per = \"key\", usd = 10 }]");
    for (size_t i = 0; i < n; ++i) {
      std::string at = "/budgets/" + std::to_string(i);
      Rule r{Scope::kKey, c.string(at + "/per", "key"), c.number(at + "/usd", 0, 0, 1e12)};
      static const std::pair<const char*, Scope> kScopes[] = {
          {"global", Scope::kGlobal}, {"key", Scope::kKey}, {"user", Scope::kUser}, {"team", Scope::kTeam}};
      bool known = false;
      for (auto [name, scope] : kScopes)
        if (r.scope_name == name) {
          r.scope = scope;
          known = true;
        }
      if (!known)
        c.error(at + "/per", "must be one of global, key, user, team; not \"" + r.scope_name + "\"");
      if (!c.json().has(at + "/usd")) c.error(at, "needs usd (the budget per period, in US dollars)");
      for (const auto& k : c.keys(at))
        if (k != "per" && k != "usd") c.error(at + "/" + k, "unknown key '" + k + "' (expected per, usd)");
      rules_.push_back(r);
    }
  }

  std::unique_ptr<ferry::sdk::Filter> new_filter(Context&) override { return std::make_unique<Spend>(*this); }

  // GET /admin/plugins/<name>/spend[?per=key&id=alice&period=2026-11]: every
  // budget's spend, limit and usage (requests, tokens) per period.
  Status on_admin(const ferry::sdk::AdminRequest& req, ferry::sdk::AdminReply reply) override {
    if (req.path != "/spend" || req.method != "GET") {
      reply.error(404, "unknown_url", "budget admin route: GET /spend[?per=key&id=NAME&period=2026-11]");
      return Status::kContinue;
    }
    auto param = [&](std::string_view name) {
      std::string_view q = req.query;
      while (!q.empty()) {
        auto amp = q.find('&');
        auto item = q.substr(0, amp);
        if (item.substr(0, item.find('=')) == name && item.find('=') != std::string_view::npos)
          return std::string(item.substr(item.find('=') + 1));
        if (amp == std::string_view::npos) break;
        q.remove_prefix(amp + 1);
      }
      return std::string();
    };
    std::string per = param("per"), id = param("id"), period = param("period");
    std::map<std::string, double> limits;
    for (const auto& r : rules_) limits[r.scope_name] = r.usd;
    ferry::sdk::state_call(StateOp::scan("", 100'000), [reply, per, id, period,
                                                        limits](const StateResult& r) {
      if (!r.ok()) return reply.error(503, "state_unavailable", "the state backend cannot be reached");
      struct Row {
        double spent = 0, requests = 0, prompt = 0, completion = 0;
      };
      std::map<std::string, Row> rows;  // "scope:id:period"
      auto doc = ferry::sdk::OwnedJson::parse(r.data);
      for (size_t i = 0, n = doc ? doc->json().size() : 0; i < n; ++i) {
        std::string at = "/" + std::to_string(i);
        std::string key(doc->json().string(at + "/key").value_or(""));
        double value = std::atof(std::string(doc->json().string(at + "/value").value_or("0")).c_str());
        if (key.starts_with("spend:")) {
          rows[key.substr(6)].spent = value;
        } else if (key.starts_with("usage:")) {
          auto colon = key.find(':', 6);
          std::string what = key.substr(6, colon - 6), rest = key.substr(colon + 1);
          Row& row = rows[rest];
          (what == "requests" ? row.requests : what == "prompt_tokens" ? row.prompt : row.completion) = value;
        }
      }
      ferry::sdk::JsonWriter w;
      w.begin_object().key("budgets").begin_array();
      for (const auto& [k, row] : rows) {
        // scope:id:period, where id itself may hold colons.
        auto first = k.find(':'), last = k.rfind(':');
        if (first == std::string::npos || last == first) continue;
        std::string scope = k.substr(0, first), who = k.substr(first + 1, last - first - 1),
                    when = k.substr(last + 1);
        if ((!per.empty() && scope != per) || (!id.empty() && who != id) ||
            (!period.empty() && when != period))
          continue;
        w.begin_object().key("per").value(scope).key("id").value(who).key("period").value(when);
        w.key("spent_usd").value(row.spent);
        if (auto l = limits.find(scope); l != limits.end()) w.key("limit_usd").value(l->second);
        w.key("requests").value(static_cast<int64_t>(row.requests));
        w.key("prompt_tokens").value(static_cast<int64_t>(row.prompt));
        w.key("completion_tokens").value(static_cast<int64_t>(row.completion)).end_object();
      }
      w.end_array().end_object();
      reply.send(200, w.str());
    });
    return Status::kContinue;
  }

  const std::vector<Rule>& rules() const { return rules_; }
  bool fail_open() const { return fail_open_; }
  int64_t default_completion_tokens() const { return default_completion_tokens_; }
  int64_t image_tokens() const { return image_tokens_; }
  const std::string& period_name() const { return period_name_; }

  std::optional<Price> price(std::string_view model) const {
    auto it = prices_.find(std::string(model));
    if (it == prices_.end()) it = prices_.find("*");
    if (it == prices_.end()) return std::nullopt;
    return it->second;
  }

  // The current period's name in keys ("2026-11"), and how long its counters
  // are kept: the period plus 35 days, so last period's spend can still be read.
  std::string period_id(uint64_t& ttl_ms) const {
    time_t now = static_cast<time_t>(ferry::sdk::host().clock_ns(FERRY_CLOCK_REALTIME) / 1'000'000'000);
    tm t{};
    gmtime_r(&now, &t);
    char buf[16];
    const uint64_t day = 86'400'000;
    switch (period_) {
      case Period::kDay:
        std::strftime(buf, sizeof buf, "%Y-%m-%d", &t);
        ttl_ms = 36 * day;
        return buf;
      case Period::kMonth:
        std::strftime(buf, sizeof buf, "%Y-%m", &t);
        ttl_ms = 67 * day;
        return buf;
      case Period::kTotal: ttl_ms = 0; return "total";
    }
    return "total";
  }

 private:
  Period period_ = Period::kMonth;
  std::string period_name_;
  bool fail_open_ = false;
  int64_t default_completion_tokens_ = 256;
  int64_t image_tokens_ = 3'000;
  std::map<std::string, Price> prices_;
  std::vector<Rule> rules_;
};

Status Spend::on_request(Context& ctx, Json& req) {
  auto price = owner_.price(ctx.model());
  if (!price) {
    ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_budget_unpriced_total", 1);
    ctx.log(LogLevel::kWarn, "budget: no price for model '" + std::string(ctx.model()) +
                                 "' (add it, or \"*\", to prices): not charged");
    return Status::kContinue;
  }
  price_ = *price;
  auto asked = req.integer("/max_completion_tokens");
  if (!asked) asked = req.integer("/max_tokens");
  int64_t max_tokens = asked.value_or(owner_.default_completion_tokens());
  // Without a limit the answer's cost has no bound: the request gets one.
  if (!asked && !ctx.embeddings() && req.set("/max_tokens", std::to_string(max_tokens)) != Status::kContinue)
    return ctx.respond_error(500, "server_error", "budget: cannot set max_tokens on the request",
                             "plugin_error");
  if (ctx.embeddings()) max_tokens = 0;  // embeddings produce no completion tokens
  int64_t choices = std::max<int64_t>(1, req.integer("/n").value_or(1));
  reserved_ =
      (static_cast<double>(ferry::sdk::prompt_token_bound(req, owner_.image_tokens())) * price_.input +
       static_cast<double>(std::max<int64_t>(0, max_tokens)) * static_cast<double>(choices) * price_.output) /
      1e6;
  uint64_t ttl_ms = 0;
  std::string period = owner_.period_id(ttl_ms);
  for (const auto& rule : owner_.rules()) {
    std::string who = identity(ctx, req, rule.scope);
    if (who.empty()) continue;
    charges_.push_back({"spend:" + rule.scope_name + ":" + who + ":" + period, rule.usd});
  }
  ttl_ms_ = ttl_ms;
  return reserve(ctx);
}

// Reserves on every budget at once (one round trip on Redis); a refusal by
// one gives back the others' reservations.
Status Spend::reserve(Context& ctx) {
  if (charges_.empty()) return Status::kContinue;
  std::vector<StateOp> ops;
  for (const auto& c : charges_) ops.push_back(StateOp::add(c.key, reserved_, c.limit, ttl_ms_));
  return ctx.state_all_then(std::move(ops), [this](Context& ctx, const std::vector<StateResult>& rs) {
    std::optional<size_t> refused;
    bool unavailable = false;
    for (size_t i = 0; i < rs.size(); ++i) {
      if (!rs[i].ok())
        unavailable = true;
      else if (rs[i].applied)
        charges_[i].taken = true;
      else if (!refused)
        refused = i;
    }
    if (unavailable) {
      ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_budget_state_errors_total", 1);
      if (!owner_.fail_open()) {
        give_back();
        return ctx.respond_error(503, "budget_unavailable",
                                 "budgets cannot be checked right now (state backend unavailable)",
                                 "budget_unavailable");
      }
      ctx.log(LogLevel::kWarn,
              "budget: state backend unavailable: admitting without the budgets it could not check");
    }
    if (refused) {
      give_back();
      ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_budget_rejected_total", 1);
      const Charge& c = charges_[*refused];
      std::string who = c.key.substr(6, c.key.rfind(':') - 6);  // "key:alice"
      return ctx.respond_error(429, "insufficient_quota",
                               "budget exceeded: " + who + " has used $" + format_usd(rs[*refused].value) +
                                   " of $" + format_usd(c.limit) + " this " + owner_.period_name() +
                                   " (this request may cost up to $" + format_usd(reserved_) + ")",
                               "budget_exceeded");
    }
    if (charges_[0].taken)
      ctx.set_response_header("x-ferry-budget-remaining-usd",
                              format_usd(std::max(0.0, charges_[0].limit - rs[0].value)));
    return Status::kContinue;
  });
}

void Spend::give_back() {
  for (auto& c : charges_)
    if (c.taken) {
      ferry::sdk::state_call(StateOp::add(c.key, -reserved_, c.limit), nullptr);
      c.taken = false;
    }
}

// The reservation becomes the real cost: the upstream's usage, or the
// host's estimate of it (a stream without a usage chunk, one the client
// abandoned). A call that failed before any answer costs nothing. The charge
// never passes the reservation, so the budget's bound holds whatever the
// upstream reports.
void Spend::on_complete(Context& ctx, const ferry_request_summary& s) {
  double actual = (static_cast<double>(std::max<int64_t>(0, s.prompt_tokens)) * price_.input +
                   static_cast<double>(std::max<int64_t>(0, s.completion_tokens)) * price_.output) /
                  1e6;
  if (actual > reserved_) {
    ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_budget_overrun_usd_total", actual - reserved_);
    ctx.log(LogLevel::kWarn, "budget: the upstream reported usage worth $" + format_usd(actual) +
                                 ", more than the $" + format_usd(reserved_) +
                                 " this request could cost (max_tokens ignored?): $" + format_usd(reserved_) +
                                 " charged, the rest counted in ferry_budget_overrun_usd_total");
    actual = reserved_;
  }
  bool any = false;
  for (const auto& c : charges_) {
    if (!c.taken) continue;
    any = true;
    if (actual != reserved_)
      ferry::sdk::state_call(StateOp::add(c.key, actual - reserved_, c.limit).force(), nullptr);
    // Usage next to the spend, for the admin API: "usage:<what>:" + the
    // spend key's scope, id and period.
    std::string tail = c.key.substr(6);  // after "spend:"
    auto count = [&](const char* what, double n) {
      if (n > 0)
        ferry::sdk::state_call(StateOp::add(std::string("usage:") + what + ":" + tail, n, 1e300, ttl_ms_),
                               nullptr);
    };
    count("requests", 1);
    count("prompt_tokens", static_cast<double>(std::max<int64_t>(0, s.prompt_tokens)));
    count("completion_tokens", static_cast<double>(std::max<int64_t>(0, s.completion_tokens)));
  }
  if (any && actual > 0) ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_budget_spend_usd_total", actual);
}

}  // namespace

FERRY_MIDDLEWARE_PLUGIN(Budget, "budget", "1.0.0")
