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

// What one request of storm() reserves: its messages' 32 bytes of JSON bound
// the prompt, plus its 10 max_tokens, at $1 per thousand tokens.
constexpr double kStormReservation = (32 + 10) / 1000.0;

TEST(Budget, TwoHundredConcurrentRequestsNeverSpendPastTheBudget) {
  // Each request reserves $0.042 and really costs ≈ $0.005: checked after the
  // fact, all 200 would pass at $0 and spend $1.
  auto f = Ferryd::start(budgeted("[{ per = \"key\", usd = 0.3 }]"));
  auto o = storm({f->address()});
  EXPECT_LE(o.spent, 0.3 + 1e-9);
  EXPECT_GE(o.admitted, static_cast<int>(0.3 / kStormReservation)) << "the budget admits what it can";
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
  EXPECT_GE(o.admitted, static_cast<int>(0.3 / kStormReservation));
  EXPECT_EQ(o.admitted + o.refused, 200) << o.other;
}

TEST(Budget, ChargesStreamedAnswersAndSaysWhatIsLeft) {
  auto f = Ferryd::start(budgeted("[{ per = \"user\", usd = 0.06 }]"));
  HeaderList user{{"x-ferry-user", "ann"}};
  HeaderList first_headers = user;
  first_headers.emplace_back("x-request-id", "whole-0");
  auto first = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi", R"("max_tokens":4)"),
                         first_headers);
  ASSERT_EQ(first.status, 200);
  // Its real cost replaces the reservation in on_complete, after the answer:
  // the streams below must not race it.
  ASSERT_TRUE(f->log_line("request_id=whole-0 "));
  // $0.06 - the $0.036 reservation (32 bytes of messages + 4 max_tokens).
  EXPECT_EQ(first.header("x-ferry-budget-remaining-usd"), "0.024");
  // Streamed answers of $0.005 each, while a $0.036 reservation still fits.
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
  EXPECT_EQ(streamed, 4) << "$0.005 + 4 × $0.005 spent; a sixth reservation of $0.036 does not fit";
}

TEST(Budget, TheSqliteLedgerSurvivesARestart) {
  TempDir dir;
  std::string state = "[state]\nbackend = \"sqlite\"\npath = \"" + dir.path() + "/ledger.db\"\n";
  auto config = budgeted("[{ per = \"key\", usd = 0.045 }]", state);
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
    EXPECT_EQ(ask(*f), 200);  // reserves $0.036, costs $0.005
    EXPECT_EQ(ask(*f), 200);  // $0.005 + $0.036 fits in $0.045
    EXPECT_EQ(ask(*f), 429);  // $0.010 + $0.036 does not
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

// ---- the bound holds for any prompt and any upstream (findings: a prompt of
// one-letter words spent $1.82 of a $1.00 budget; an upstream ignoring
// max_tokens $1.49; streams without a usage chunk were free)

// The same $1 per thousand tokens, through the openai adapter to the mock
// upstream, which ignores max_tokens unless told otherwise.
std::string budgeted_upstream(const MockUpstream& up, const std::string& usd) {
  return "[log]\nlevel = \"info\"\n\n" + openai_provider("up", up) +
         "[middleware.budget]\nplugin = \"budget\"\nprices = { m = { input = 1000, output = 1000 } }\n"
         "budgets = [{ per = \"key\", usd = " +
         usd +
         " }]\n\n[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"up\"]\nmiddleware = [\"budget\"]\n";
}

double ledger(const Ferryd& f) {
  auto r = http_get(f.admin_address(), "/admin/plugins/budget/spend?per=key");
  auto budgets = r.json()["budgets"];
  return budgets.empty() ? 0.0 : budgets[0]["spent_usd"].get<double>();
}

// 200 requests at once; waits until every one of them was charged.
void storm_and_settle(const Ferryd& f, const std::string& body, int* admitted = nullptr) {
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 200; ++i)
    clients.emplace_back([&, i] {
      auto r = http_post(f.address(), "/v1/chat/completions", body,
                         {{"authorization", "Bearer k"}, {"x-request-id", "storm-" + std::to_string(i)}});
      if (r.status == 200) ++ok;
    });
  for (auto& t : clients) t.join();
  for (int i = 0; i < 200; ++i)
    ASSERT_TRUE(const_cast<Ferryd&>(f).log_line("request_id=storm-" + std::to_string(i) + " "));
  if (admitted) *admitted = ok;
}

TEST(BudgetBound, APromptOfOneLetterWordsCannotOutrunItsReservation) {
  MockUpstream up;
  // An honest upstream (max_tokens kept) with the costliest tokenizer there
  // is, one token per byte: only the prompt attacks, and no estimate of its
  // tokens holds (chars/4 + 4 said 54 for these 199 bytes).
  up.set_faults(R"({"honor_max_tokens":true,"byte_tokens":true})");
  auto f = Ferryd::start(budgeted_upstream(up, "1.00"));
  std::string words;
  for (int i = 0; i < 100; ++i) words += i ? " a" : "a";
  int admitted = 0;
  storm_and_settle(*f, chat_body("m", words, R"("max_tokens":10)"), &admitted);
  EXPECT_GT(admitted, 0);
  EXPECT_LE(ledger(*f), 1.00 + 1e-9);
  EXPECT_NEAR(ledger(*f), admitted * (199 + 10) / 1000.0, 1e-9) << "each is charged its real usage";
}

TEST(BudgetBound, AnUpstreamIgnoringMaxTokensIsNeverChargedPastWhatWasReserved) {
  MockUpstream up({"--words", "500"});  // 500 words whatever max_tokens says
  auto f = Ferryd::start(budgeted_upstream(up, "1.00"));
  int admitted = 0;
  storm_and_settle(*f, chat_body("m", "hi", R"("max_tokens":5)"), &admitted);
  EXPECT_GT(admitted, 0);
  EXPECT_LE(ledger(*f), 1.00 + 1e-9);
  auto metrics = http_get(f->address(), "/metrics").body;
  EXPECT_NE(metrics.find("ferry_budget_overrun_usd_total"), std::string::npos) << metrics;
}

TEST(BudgetBound, AStreamPastMaxTokensIsCutWhereTheReservationEnds) {
  MockUpstream up;
  auto f = Ferryd::start(budgeted_upstream(up, "1.00"));
  std::string words;
  for (int i = 0; i < 40; ++i) words += " w" + std::to_string(i);
  auto s = http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("m", words, R"("max_tokens":5,"stream":true)"),
                         {{"authorization", "Bearer k"}});
  ASSERT_EQ(s.status, 200) << s.raw;
  EXPECT_TRUE(s.ends_with_done()) << s.raw;
  auto chunks = s.chunks();
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks.back()["choices"][0]["finish_reason"], "length") << s.raw;
  // max_tokens pieces reached the client, not the 42 words.
  size_t pieces = 0;
  for (const auto& c : chunks)
    if (c["choices"].size() && c["choices"][0]["delta"].value("content", "") != "") ++pieces;
  EXPECT_EQ(pieces, 5u) << s.raw;
  ASSERT_TRUE(f->log_line("streamed past max_tokens=5")) << f->output();
  EXPECT_NE(http_get(f->address(), "/metrics").body.find("ferry_max_tokens_cut_total{provider=\"up\"}"),
            std::string::npos);
}

TEST(BudgetBound, AStreamWithoutAUsageChunkIsChargedFromWhatItForwarded) {
  MockUpstream up;
  auto f = Ferryd::start(budgeted_upstream(up, "1.00"));
  auto s = http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("m", "one two three [[fault:no_usage]]", R"("stream":true)"),
                         {{"authorization", "Bearer k"}, {"x-request-id", "no-usage"}});
  ASSERT_TRUE(s.ends_with_done()) << s.raw;
  auto line = f->log_line("request_id=no-usage ");
  ASSERT_TRUE(line) << f->output();
  EXPECT_NE(line->find("usage=estimated"), std::string::npos) << *line;
  // "mock reply: one two three" is five pieces; the prompt at least its words.
  EXPECT_GE(ledger(*f), (3 + 5) / 1000.0 - 1e-9);
}

TEST(BudgetBound, AStreamTheClientAbandonsIsStillCharged) {
  MockUpstream up;
  auto f = Ferryd::start(budgeted_upstream(up, "1.00"));
  std::string words;
  for (int i = 0; i < 30; ++i) words += " w" + std::to_string(i);
  int seen = 0;
  http_post_sse(f->address(), "/v1/chat/completions",
                chat_body("m", words + " [[fault:chunk_delay_ms=50]]", R"("stream":true)"),
                {{"authorization", "Bearer k"}, {"x-request-id", "abandoned"}},
                [&](std::string_view) { return ++seen < 3; });
  auto line = f->log_line("request_id=abandoned ");
  ASSERT_TRUE(line) << f->output();
  EXPECT_NE(line->find("usage=estimated"), std::string::npos) << *line;
  EXPECT_GE(ledger(*f), 30 / 1000.0 - 1e-9) << "at least the prompt's 30 words";
}

}  // namespace
}  // namespace ferry::test
