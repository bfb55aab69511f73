// The budget middleware through the real ferryd: reservations keep 200
// concurrent requests from spending past a budget (memory, and two instances
// on a real Redis), streamed answers are charged, and the sqlite ledger
// survives a restart.
#include <atomic>
#include <mutex>
#include <thread>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

// $1 per thousand tokens, in and out, for model "m" (the in-process mock,
// slowed down so that requests overlap).
std::string budgeted(const std::string& budgets, const std::string& state_block = "") {
  return "[log]\nlevel = \"info\"\n\n" + state_block +
         "\n[providers.mock]\nplugin = \"mock\"\nlatency_ms = 50\n\n"
         "[middleware.budget]\nplugin = \"budget\"\nperiod = \"month\"\n"
         "prices = { m = { input = 1000, output = 1000 } }\nbudgets = " +
         budgets +
         "\n\n[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"mock\"]\nmiddleware = [\"budget\"]\n";
}

HeaderList key(const std::string& k) { return {{"authorization", "Bearer " + k}}; }

double cost_of(const HttpResponse& r) {
  auto doc = r.json();
  if (!doc.is_object() || !doc["usage"].is_object()) {
    ADD_FAILURE() << "a 200 without usage: " << r.body;
    return 1e9;
  }
  const auto& u = doc["usage"];
  return (u["prompt_tokens"].get<double>() + u["completion_tokens"].get<double>()) / 1000.0;
}

struct Outcome {
  int admitted = 0;
  int refused = 0;
  double spent = 0;
  std::string other;  // anything else, for the failure message
};

// 200 requests at once, spread over the given ferryd addresses.
Outcome storm(const std::vector<std::string>& addresses) {
  Outcome o;
  std::mutex mu;
  std::vector<std::thread> clients;
  for (int i = 0; i < 200; ++i)
    clients.emplace_back([&, i] {
      auto r = http_post(addresses[i % addresses.size()], "/v1/chat/completions",
                         chat_body("m", "hi", R"("max_tokens":10)"), key("team-key"));
      std::lock_guard lock(mu);
      if (r.status == 200) {
        ++o.admitted;
        o.spent += cost_of(r);
      } else if (r.status == 429 && r.body.find("budget_exceeded") != std::string::npos) {
        ++o.refused;
      } else {
        o.other += std::to_string(r.status) + " " + r.body.substr(0, 200) + "\n";
      }
    });
  for (auto& t : clients) t.join();
  return o;
}

TEST(Budget, TwoHundredConcurrentRequestsNeverSpendPastTheBudget) {
  // Each request reserves ≈ $0.015 (prompt estimate + 10 max tokens) and
  // really costs ≈ $0.005: checked after the fact, all 200 would pass at $0
  // and spend $1.
  auto f = Ferryd::start(budgeted("[{ per = \"key\", usd = 0.3 }]"));
  auto o = storm({f->address()});
  EXPECT_LE(o.spent, 0.3 + 1e-9);
  EXPECT_GE(o.admitted, 15) << "the budget admits what it can";
  EXPECT_EQ(o.admitted + o.refused, 200) << o.other;
  auto refused = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi", R"("max_tokens":300)"),
                           key("team-key"));
  ASSERT_EQ(refused.status, 429);
  EXPECT_EQ(refused.json()["error"]["type"], "insufficient_quota");
  EXPECT_NE(refused.json()["error"]["message"].get<std::string>().find("of $0.30 this month"),
            std::string::npos)
      << refused.body;
}

TEST(BudgetRedis, TwoInstancesShareOneBudgetUnderConcurrency) {
  RedisServer redis;
  // A generous command timeout: a CI machine busy with 200 clients must not
  // make Redis look down (that path has its own test).
  std::string state =
      "[state]\nbackend = \"redis\"\nurl = \"" + redis.url() + "\"\ncommand_timeout_ms = 5000\n";
  auto config = budgeted("[{ per = \"key\", usd = 0.3 }]", state);
  auto a = Ferryd::start(config);
  auto b = Ferryd::start(config);
  auto o = storm({a->address(), b->address()});
  EXPECT_LE(o.spent, 0.3 + 1e-9);
  EXPECT_GE(o.admitted, 15);
  EXPECT_EQ(o.admitted + o.refused, 200) << o.other;
}

TEST(Budget, ChargesStreamedAnswersAndSaysWhatIsLeft) {
  auto f = Ferryd::start(budgeted("[{ per = \"user\", usd = 0.02 }]"));
  HeaderList user{{"x-ferry-user", "ann"}};
  auto first =
      http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi", R"("max_tokens":4)"), user);
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.header("x-ferry-budget-remaining-usd"), "0.011");  // $0.02 - the $0.009 reservation
  // Three streamed answers of $0.005 each use up the rest.
  int streamed = 0;
  for (int i = 0; i < 5; ++i) {
    std::string id = "stream-" + std::to_string(i);
    HeaderList headers = user;
    headers.emplace_back("x-request-id", id);
    auto s = http_post_sse(f->address(), "/v1/chat/completions",
                           chat_body("m", "hi", R"("max_tokens":4,"stream":true)"), headers);
    if (s.status != 200) break;
    EXPECT_TRUE(s.ends_with_done());
    ++streamed;
    // on_complete charges after the last byte; its access log line comes after.
    ASSERT_TRUE(f->log_line("request_id=" + id + " "));
  }
  EXPECT_EQ(streamed, 2) << "$0.005 + 2 × $0.005 spent; a fourth reservation of $0.009 does not fit";
}

TEST(Budget, TheSqliteLedgerSurvivesARestart) {
  TempDir dir;
  std::string state = "[state]\nbackend = \"sqlite\"\npath = \"" + dir.path() + "/ledger.db\"\n";
  auto config = budgeted("[{ per = \"key\", usd = 0.015 }]", state);
  int n = 0;
  // One request; returns once its on_complete has charged: the access log line
  // is written after it, and the state thread keeps the order of operations.
  auto ask = [&](Ferryd& f) {
    std::string id = "ledger-" + std::to_string(n++);
    int status = http_post(f.address(), "/v1/chat/completions", chat_body("m", "hi", R"("max_tokens":4)"),
                           {{"authorization", "Bearer k"}, {"x-request-id", id}})
                     .status;
    EXPECT_TRUE(f.log_line("request_id=" + id + " "));
    return status;
  };
  {
    auto f = Ferryd::start(config);
    EXPECT_EQ(ask(*f), 200);  // reserves $0.009, costs $0.005
    EXPECT_EQ(ask(*f), 200);  // $0.005 + $0.009 fits in $0.015
    EXPECT_EQ(ask(*f), 429);  // $0.010 + $0.009 does not
    EXPECT_EQ(f->stop(), 0);
  }
  auto again = Ferryd::start(config);
  EXPECT_EQ(ask(*again), 429) << "the $0.010 spent before the restart was forgotten";
}

TEST(Budget, SpendAndUsageAreQueryableFromTheAdminApi) {
  auto f = Ferryd::start(budgeted("[{ per = \"key\", usd = 1 }, { per = \"user\", usd = 5 }]"));
  for (int i = 0; i < 2; ++i) {
    std::string id = "spend-" + std::to_string(i);
    ASSERT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi", R"("max_tokens":4)"),
                        {{"authorization", "Bearer k"}, {"x-request-id", id}, {"x-ferry-user", "ann"}})
                  .status,
              200);
    ASSERT_TRUE(f->log_line("request_id=" + id + " "));
  }
  auto r = http_get(f->admin_address(), "/admin/plugins/budget/spend?per=user");
  ASSERT_EQ(r.status, 200) << r.body;
  auto budgets = r.json()["budgets"];
  ASSERT_EQ(budgets.size(), 1u) << r.body;
  EXPECT_EQ(budgets[0]["id"], "ann");
  EXPECT_NEAR(budgets[0]["spent_usd"].get<double>(), 0.010, 1e-9);  // 2 × (1 + 4 tokens) at $1/1k
  EXPECT_EQ(budgets[0]["limit_usd"], 5);
  EXPECT_EQ(budgets[0]["requests"], 2);
  EXPECT_EQ(budgets[0]["prompt_tokens"], 2);
  EXPECT_EQ(budgets[0]["completion_tokens"], 8);
  // Without a filter, the key's budget is listed too.
  EXPECT_EQ(http_get(f->admin_address(), "/admin/plugins/budget/spend").json()["budgets"].size(), 2u);
}

TEST(Budget, RefusesAConfigWithoutPricesAtItsPosition) {
  auto r = ferryd_refusing(
      "[providers.mock]\n\n[middleware.budget]\nplugin = \"budget\"\nbudgets = [{ per = \"key\", usd = 1 "
      "}]\n\n"
      "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"mock\"]\nmiddleware = [\"budget\"]\n");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("prices in [middleware.budget]: is required"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace ferry::test
