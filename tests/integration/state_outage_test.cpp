// A Redis that stops answering, not one that is gone: redis-server is stopped
// with SIGSTOP, so its sockets stay open and the kernel still completes new
// connections, but nothing is ever answered. ferryd must notice within its
// command timeout, apply each plugin's policy, say so in /health, and recover
// by itself once Redis answers again (SIGCONT).
#include <string>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

// Model "closed": a rate limit that fails closed. Model "budget": a budget
// (fail closed is its default). Model "open": a rate limit that fails open.
// A small command timeout keeps the test quick; its exact value is not asserted.
std::string outage_config(const RedisServer& redis) {
  return "[log]\nlevel = \"info\"\n\n[state]\nbackend = \"redis\"\nurl = \"" + redis.url() +
         "\"\nconnect_timeout_ms = 300\ncommand_timeout_ms = 300\n" + R"(
[providers.mock]
plugin = "mock"

[middleware.closed_limit]
plugin = "rate-limit"
on_unavailable = "closed"
limits = [{ per = "global", requests_per_minute = 100000 }]

[middleware.open_limit]
plugin = "rate-limit"
on_unavailable = "open"
limits = [{ per = "global", requests_per_minute = 100000 }]

[middleware.spend]
plugin = "budget"
prices = { "*" = { input = 1.0, output = 1.0 } }
budgets = [{ per = "global", usd = 1000 }]

[pipelines.closed]
models = ["closed"]
providers = ["mock"]
middleware = ["closed_limit"]

[pipelines.open]
models = ["open"]
providers = ["mock"]
middleware = ["open_limit"]

[pipelines.budget]
models = ["budget"]
providers = ["mock"]
middleware = ["spend"]
)";
}

HttpResponse ask(const Ferryd& f, const std::string& model) {
  return http_post(f.address(), "/v1/chat/completions", chat_body(model, "hi"));
}

json::Value state_of(const Ferryd& f) { return http_get(f.address(), "/health").json()["state"]; }

size_t count_of(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

TEST(StateOutage, APausedRedisMakesFailClosedPluginsAnswer503AndRecoversAfterResume) {
  RedisServer redis;
  auto f = Ferryd::start(outage_config(redis));
  for (const char* model : {"closed", "open", "budget"}) ASSERT_EQ(ask(*f, model).status, 200) << model;
  EXPECT_EQ(state_of(*f)["available"], true);

  redis.pause();
  // The first request waits for Redis up to the command timeout, then gets
  // the policy's answer: not a hang until the pause timeout (504).
  auto refused = ask(*f, "closed");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.json()["error"]["code"], "rate_limit_unavailable") << refused.body;
  EXPECT_TRUE(f->log_line("redis at 127.0.0.1:" + std::to_string(redis.port()) + " is unreachable"))
      << f->output();
  auto state = state_of(*f);
  EXPECT_EQ(state["backend"], "redis");
  EXPECT_EQ(state["available"], false) << state.dump();
  auto budget = ask(*f, "budget");
  EXPECT_EQ(budget.status, 503) << budget.body;
  EXPECT_EQ(budget.json()["error"]["code"], "budget_unavailable") << budget.body;
  EXPECT_EQ(ask(*f, "open").status, 200) << "fail open admits";
  EXPECT_NE(http_get(f->address(), "/metrics").body.find("ferry_state_backend_up{backend=\"redis\"} 0"),
            std::string::npos);

  redis.resume();
  EXPECT_TRUE(eventually([&] { return ask(*f, "closed").status == 200; }, std::chrono::seconds(15)))
      << "did not recover by itself; output:\n"
      << f->output();
  EXPECT_EQ(ask(*f, "budget").status, 200);
  EXPECT_EQ(state_of(*f)["available"], true);
  // The reconnection is logged (the line may trail the first answers).
  EXPECT_TRUE(eventually([&] { return count_of(f->output(), "state: connected to redis") == 2; }))
      << f->output();
}

TEST(StateOutage, HealthShowsARedisThatStoppedAnsweringEvenWithoutTraffic) {
  // No plugin call touches Redis meanwhile: ferryd must find out by itself,
  // or /health keeps telling load balancers that all is well.
  RedisServer redis;
  auto f = Ferryd::start(outage_config(redis));
  EXPECT_EQ(state_of(*f)["available"], true);
  redis.pause();
  EXPECT_TRUE(f->log_line("is unreachable", std::chrono::seconds(10))) << f->output();
  EXPECT_EQ(state_of(*f)["available"], false);
  redis.resume();
  EXPECT_TRUE(eventually([&] { return state_of(*f)["available"] == true; }, std::chrono::seconds(15)))
      << f->output();
  EXPECT_EQ(ask(*f, "closed").status, 200);
}

TEST(StateOutage, FerrydStartedAgainstAPausedRedisSaysSoAndConnectsOnceItAnswers) {
  RedisServer redis;
  redis.pause();
  auto f = Ferryd::start(outage_config(redis));
  // Reported before ferryd serves, not discovered by the first client.
  auto ready = f->output().find(" ready: ");
  auto down = f->output().find("redis at 127.0.0.1:" + std::to_string(redis.port()) + " is unreachable");
  ASSERT_NE(down, std::string::npos) << f->output();
  EXPECT_LT(down, ready) << f->output();
  EXPECT_EQ(state_of(*f)["available"], false);
  EXPECT_EQ(ask(*f, "closed").status, 503);
  EXPECT_EQ(ask(*f, "open").status, 200);

  redis.resume();
  EXPECT_TRUE(f->log_line("state: connected to redis", std::chrono::seconds(15))) << f->output();
  EXPECT_EQ(state_of(*f)["available"], true);
  EXPECT_EQ(ask(*f, "closed").status, 200);
}

}  // namespace
}  // namespace ferry::test
