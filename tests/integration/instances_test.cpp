// Every configured block is an instance of its own (ABI 1.3, sdk/ABI.md R20):
// two blocks of one plugin keep their state, log lines and metrics apart.
#include "tests/integration/common.h"

namespace ferry::test {
namespace {

// Two pipelines, each behind its own rate-limit block: "generous" (model a)
// and "strict" (model b).
std::string two_limiters(const std::string& state_block = "") {
  return "[log]\nlevel = \"info\"\n\n" + state_block +
         "\n[providers.mock]\nplugin = \"mock\"\n\n"
         "[middleware.generous]\nplugin = \"rate-limit\"\nlimits = [{ per = \"global\", requests_per_minute "
         "= 1000 "
         "}]\n\n"
         "[middleware.strict]\nplugin = \"rate-limit\"\nlimits = [{ per = \"global\", requests_per_minute = "
         "2 }]\n\n"
         "[pipelines.a]\nmodels = [\"a\"]\nproviders = [\"mock\"]\nmiddleware = [\"generous\"]\n\n"
         "[pipelines.b]\nmodels = [\"b\"]\nproviders = [\"mock\"]\nmiddleware = [\"strict\"]\n";
}

void expect_counted_apart(const Ferryd& f) {
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(http_post(f.address(), "/v1/chat/completions", chat_body("a", "hi")).status, 200);
  // The strict block's counter is its own: the three requests above are not in it.
  EXPECT_EQ(http_post(f.address(), "/v1/chat/completions", chat_body("b", "hi")).status, 200);
  EXPECT_EQ(http_post(f.address(), "/v1/chat/completions", chat_body("b", "hi")).status, 200);
  EXPECT_EQ(http_post(f.address(), "/v1/chat/completions", chat_body("b", "hi")).status, 429);
  // ... and the generous one still admits.
  EXPECT_EQ(http_post(f.address(), "/v1/chat/completions", chat_body("a", "hi")).status, 200);
}

TEST(Instances, TwoBlocksOfOnePluginCountApart) {
  auto f = Ferryd::start(two_limiters());
  expect_counted_apart(*f);
}

TEST(Instances, TwoBlocksOfOnePluginCountApartOnRedisToo) {
  RedisServer redis;
  auto f = Ferryd::start(two_limiters("[state]\nbackend = \"redis\"\nurl = \"" + redis.url() + "\"\n"));
  expect_counted_apart(*f);
  // The keys say whose they are.
  std::string keys = redis.cli({"--scan"});
  EXPECT_NE(keys.find("rate-limit.strict:"), std::string::npos) << keys;
  EXPECT_NE(keys.find("rate-limit.generous:"), std::string::npos) << keys;
}

TEST(Instances, LogLinesAndMetricsNameTheInstance) {
  auto f = Ferryd::start(
      "[log]\nlevel = \"info\"\n\n[providers.mock]\nplugin = \"mock\"\n\n"
      "[middleware.gate]\nplugin = \"auth\"\n"
      "keys = [{ sha256 = \"4d692786b022a5d5a48381dcaf1e5e346366feb5579a1d699de2991d153b05f9\", owner = "
      "\"alice\" }]\n\n"
      "[middleware.spend]\nplugin = \"budget\"\nprices = { other = { input = 1, output = 1 } }\n"
      "budgets = [{ per = \"global\", usd = 10 }]\n\n"
      "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"mock\"]\nmiddleware = [\"gate\", \"spend\"]\n");
  EXPECT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"), {{"x-api-key", "sk-wrong"}})
                .status,
            401);
  auto metrics = http_get(f->address(), "/metrics").body;
  EXPECT_NE(metrics.find("ferry_auth_rejected_total{instance=\"gate\",reason=\"invalid\"} 1"),
            std::string::npos)
      << metrics;
  // budget warns about a model it has no price for: the line names the block.
  EXPECT_EQ(
      http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"), {{"x-api-key", "sk-test-alice"}})
          .status,
      200);
  EXPECT_TRUE(f->log_line("budget[spend]: [")) << f->output();
}

}  // namespace
}  // namespace ferry::test
