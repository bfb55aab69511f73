// The failover driver on its own: providers, a scripted attempt, a fake clock.
// No sockets, no plugins: what is asserted is the walk itself.
#include "core/pipeline/failover.h"

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

namespace ferry::pipeline {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using resilience::Action;
using resilience::ErrorClass;

std::unique_ptr<Provider> make_provider(const std::string& name, const std::string& attributes = "{}") {
  auto p = std::make_unique<Provider>();
  p->name = name;
  p->attributes = json::Doc::from_text(attributes);
  p->models = std::make_unique<ModelStates>(resilience::BreakerConfig{});
  return p;
}

// What one scripted attempt does: fail with `failure` (success if none),
// after `takes` of fake time.
struct Step {
  std::optional<Failure> failure;
  std::chrono::milliseconds takes{0};
};

class FakeHost final : public FailoverHost {
 public:
  asio::awaitable<std::string> skipped_by(const Provider& p) override {
    auto it = skips.find(p.name);
    co_return it == skips.end() ? std::string() : it->second;
  }
  asio::awaitable<AttemptReport> attempt(const Provider& p, ModelState&) override {
    tried.push_back(p.name);
    AttemptReport report;
    report.result = AttemptReport::Result::kSuccess;
    auto& steps = script[p.name];
    if (steps.empty()) co_return report;  // unscripted: answers
    Step step = steps.front();
    steps.pop_front();
    now_ += step.takes;
    if (step.failure) {
      last_ = *step.failure;
      report.result = AttemptReport::Result::kFailed;
      report.failure = &last_;
    }
    co_return report;
  }
  asio::awaitable<void> sleep(std::chrono::milliseconds d) override {
    slept.push_back(d);
    now_ += d;
    co_return;
  }
  std::chrono::steady_clock::time_point now() override { return now_; }
  double unit_random() override { return 0.5; }
  void emit(const Runtime::Event& e) override {
    events.push_back(std::string(Runtime::event_name(e.type)) + ":" + std::string(e.provider) +
                     (e.to_provider.empty() ? "" : ">" + std::string(e.to_provider)));
  }

  std::map<std::string, std::deque<Step>> script;
  std::map<std::string, std::string> skips;  // provider -> middleware that skips it
  std::vector<std::string> tried;
  std::vector<std::chrono::milliseconds> slept;
  std::vector<std::string> events;

 private:
  std::chrono::steady_clock::time_point now_{std::chrono::seconds(1000)};
  Failure last_;
};

Failure upstream_says(const std::string& provider, int status,
                      const std::string& message = "upstream said no", const std::string& retry_after = {}) {
  Failure f = Failure::from_upstream_error(provider, status, "", message);
  f.retry_after = retry_after;
  return f;
}

class FailoverTest : public ::testing::Test {
 protected:
  FailoverTest() : ctx(io.get_executor(), "req-1") {
    ctx.model = "m";
    ctx.pipeline = "pl";
  }
  void add(const std::string& name, const std::string& attributes = "{}") {
    providers.push_back(make_provider(name, attributes));
  }
  // Runs failover over every provider added, in order.
  FailoverEnd run(
      std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max(),
      int64_t deadline_ms = 0) {
    std::vector<const Provider*> order;
    for (const auto& p : providers) order.push_back(p.get());
    failover = std::make_unique<Failover>(host, ctx, Failover::Request{policy, "pl", deadline, deadline_ms},
                                          outcome);
    std::optional<FailoverEnd> end;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          FailoverEnd e = co_await failover->run(order);
          end = e;
        },
        asio::detached);
    io.run();
    io.restart();
    EXPECT_TRUE(end.has_value());
    return end.value_or(FailoverEnd::kAnswered);
  }
  std::vector<std::string> tried_list(std::initializer_list<const char*> names) {
    return std::vector<std::string>(names.begin(), names.end());
  }

  asio::io_context io;
  RequestContext ctx;
  resilience::Policy policy;
  FakeHost host;
  Outcome outcome;
  std::vector<std::unique_ptr<Provider>> providers;
  std::unique_ptr<Failover> failover;
};

TEST_F(FailoverTest, FailsOverOn503ButNotOn400) {
  add("a");
  add("b");
  host.script["a"].push_back({upstream_says("a", 503)});
  EXPECT_EQ(run(), FailoverEnd::kAnswered);
  EXPECT_EQ(host.tried, tried_list({"a", "b"}));
  EXPECT_EQ(outcome.provider, "b");
  EXPECT_EQ(outcome.tried, "a,b");
  EXPECT_EQ(outcome.attempts, 2u);
  EXPECT_EQ(host.events, tried_list({"provider_failed:a", "provider_switched:a>b"}));

  host.tried.clear();
  outcome = {};
  host.script["a"].push_back({upstream_says("a", 400, "bad field")});
  EXPECT_EQ(run(), FailoverEnd::kReturn);
  EXPECT_EQ(host.tried, tried_list({"a"}));
  EXPECT_EQ(failover->failure().status, 400);
  EXPECT_EQ(failover->failure().cls, ErrorClass::kClientError);
  EXPECT_EQ(outcome.provider, "");
}

TEST_F(FailoverTest, RetriesWithBackoffHonouringRetryAfter) {
  policy.actions[static_cast<size_t>(ErrorClass::kServerError)] = Action::kRetry;
  policy.actions[static_cast<size_t>(ErrorClass::kRateLimited)] = Action::kRetry;
  policy.max_retries = 3;
  add("a");
  // Full jitter at 0.5: 50 ms, then 100 ms; a Retry-After of 2 s wins over 200 ms.
  host.script["a"] = {
      {upstream_says("a", 503)}, {upstream_says("a", 502)}, {upstream_says("a", 429, "slow", "2")}};
  EXPECT_EQ(run(), FailoverEnd::kAnswered);
  EXPECT_EQ(host.tried, tried_list({"a", "a", "a", "a"}));
  ASSERT_EQ(host.slept.size(), 3u);
  EXPECT_EQ(host.slept[0], 50ms);
  EXPECT_EQ(host.slept[1], 100ms);
  EXPECT_EQ(host.slept[2], 2000ms);
  EXPECT_EQ(outcome.retries, 3u);
  EXPECT_EQ(outcome.tried, "a");  // a retry is not another provider
}

TEST_F(FailoverTest, ARetryAfterBeyondTheCapFailsOverAtOnce) {
  policy.actions[static_cast<size_t>(ErrorClass::kRateLimited)] = Action::kRetry;
  policy.max_retries = 3;
  policy.max_retry_after = 10s;
  add("a");
  add("b");
  host.script["a"].push_back({upstream_says("a", 429, "slow", "60")});
  EXPECT_EQ(run(), FailoverEnd::kAnswered);
  EXPECT_TRUE(host.slept.empty());
  EXPECT_EQ(host.tried, tried_list({"a", "b"}));
}

TEST_F(FailoverTest, StopsAtTheDeadline) {
  add("a");
  add("b");
  auto start = host.now();
  host.script["a"].push_back({upstream_says("a", 503), 1500ms});
  EXPECT_EQ(run(start + 1000ms, 1000), FailoverEnd::kExhausted);
  EXPECT_EQ(host.tried, tried_list({"a"}));
  EXPECT_EQ(failover->failure().status, 504);
  EXPECT_EQ(failover->failure().code, "deadline_exceeded");
  EXPECT_NE(failover->failure().message.find("1000 ms passed after: provider 'a'"), std::string::npos)
      << failover->failure().message;
}

TEST_F(FailoverTest, DoesNotStartABackoffThatWouldEndPastTheDeadline) {
  policy.actions[static_cast<size_t>(ErrorClass::kServerError)] = Action::kRetry;
  policy.max_retries = 3;
  policy.backoff_base = 1000ms;
  add("a");
  add("b");
  auto start = host.now();
  host.script["a"].push_back({upstream_says("a", 503), 200ms});
  // 200 ms used, 500 ms of backoff would end at 700 ms: past a 600 ms deadline.
  EXPECT_EQ(run(start + 600ms, 600), FailoverEnd::kAnswered);
  EXPECT_TRUE(host.slept.empty());
  EXPECT_EQ(host.tried, tried_list({"a", "b"}));
}

TEST_F(FailoverTest, ContextLengthOnlyMovesToALargerWindow) {
  add("a", R"({"context_window": 8000})");
  add("b", R"({"context_window": 4000})");
  add("c", R"({"context_window": 8000})");
  add("d");  // no window: not known to be larger
  add("e", R"({"context_window": 32000})");
  host.script["a"].push_back({upstream_says("a", 400, "maximum context length is 8000 tokens")});
  EXPECT_EQ(run(), FailoverEnd::kAnswered);
  EXPECT_EQ(host.tried, tried_list({"a", "e"}));
  EXPECT_EQ(outcome.provider, "e");
}

TEST_F(FailoverTest, ContextLengthWithoutWindowsIsReturned) {
  add("a");
  add("b");
  host.script["a"].push_back({upstream_says("a", 400, "prompt is too long")});
  EXPECT_EQ(run(), FailoverEnd::kReturn);
  EXPECT_EQ(host.tried, tried_list({"a"}));
  EXPECT_EQ(failover->failure().cls, ErrorClass::kContextLength);
}

TEST_F(FailoverTest, ASkipByMiddlewareMovesOn) {
  add("a");
  add("b");
  host.skips["a"] = "budget";
  EXPECT_EQ(run(), FailoverEnd::kAnswered);
  EXPECT_EQ(host.tried, tried_list({"b"}));
  EXPECT_EQ(outcome.tried, "b");
}

TEST_F(FailoverTest, EveryProviderSkippedIsA429WithRetryAfter) {
  add("a");
  host.skips["a"] = "rate-limit";
  ctx.tags.emplace_back("skip_reason", "2 rpm");
  ctx.tags.emplace_back("retry_after_ms", "1500");
  EXPECT_EQ(run(), FailoverEnd::kExhausted);
  EXPECT_TRUE(host.tried.empty());
  const Failure& f = failover->failure();
  EXPECT_EQ(f.status, 429);
  EXPECT_EQ(f.code, "provider_skipped");
  EXPECT_EQ(f.retry_after, "2");
  EXPECT_EQ(f.message, "provider 'a': skipped by middleware 'rate-limit': 2 rpm");
}

// The same through the typed control of ABI 1.3 (ctx_skip), which wins over tags.
TEST_F(FailoverTest, ASkipSaysWhyAndForHowLongThroughCtxSkip) {
  add("a");
  host.skips["a"] = "rate-limit";
  ctx.skip = {true, "3 rpm per provider", 250};
  ctx.tags.emplace_back("skip_reason", "a stale tag");
  EXPECT_EQ(run(), FailoverEnd::kExhausted);
  const Failure& f = failover->failure();
  EXPECT_EQ(f.retry_after, "1");
  EXPECT_EQ(f.message, "provider 'a': skipped by middleware 'rate-limit': 3 rpm per provider");
  EXPECT_FALSE(ctx.skip.set) << "a skip is told once, for its own provider";
}

TEST_F(FailoverTest, AReturnClassStopsWithProvidersLeft) {
  add("a");
  add("b");
  host.script["a"].push_back({upstream_says("a", 400, "violates our content policy")});
  EXPECT_EQ(run(), FailoverEnd::kReturn);
  EXPECT_EQ(host.tried, tried_list({"a"}));
  EXPECT_EQ(failover->failure().cls, ErrorClass::kContentFilter);
}

TEST_F(FailoverTest, AllFailingSumsUpEveryAttempt) {
  add("a");
  add("b");
  host.script["a"].push_back({upstream_says("a", 503, "down")});
  host.script["b"].push_back({upstream_says("b", 500, "broken")});
  EXPECT_EQ(run(), FailoverEnd::kExhausted);
  const Failure& f = failover->failure();
  EXPECT_EQ(f.status, 502);
  EXPECT_EQ(f.code, "all_providers_failed");
  EXPECT_EQ(f.message, "all 2 attempts failed: provider 'a': down; provider 'b': broken");
}

TEST_F(FailoverTest, ClientErrorsDoNotCountAgainstTheProvider) {
  add("a");
  host.script["a"].push_back({upstream_says("a", 400, "bad field")});
  run();
  EXPECT_EQ(providers[0]->stats.failures.load(), 0u);
  host.script["a"].push_back({upstream_says("a", 503)});
  run();
  EXPECT_EQ(providers[0]->stats.failures.load(), 1u);
}

}  // namespace
}  // namespace ferry::pipeline
