// The admin listener: provider and pipeline state, draining, its token.
#include "tests/integration/common.h"

namespace ferry::test {
namespace {

std::string two(const MockUpstream& a, const MockUpstream& b, const std::string& extra = "") {
  return extra + openai_provider("a", a) + openai_provider("b", b) +
         "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\", \"b\"]\nrouter = \"priority\"\n";
}

const json::Value* provider(const json::Value& list, const std::string& name) {
  for (const auto& p : list["providers"])
    if (p["name"] == name) return &p;
  return nullptr;
}

TEST(Admin, ListsProvidersWithHealthBreakersLatencyAndLoad) {
  MockUpstream a, b;
  auto f = Ferryd::start(two(a, b));
  ASSERT_FALSE(f->admin_address().empty());
  for (int i = 0; i < 5; ++i) http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  // The counters are updated just after each response has gone out.
  EXPECT_TRUE(eventually([&] {
    auto list = http_get(f->admin_address(), "/admin/providers").json();
    auto* p = provider(list, "a");
    return p && (*p)["attempts"] == 5 && (*p)["in_flight"] == 0;
  }));
  auto r = http_get(f->admin_address(), "/admin/providers");
  ASSERT_EQ(r.status, 200) << r.body;
  auto list = r.json();
  auto* pa = provider(list, "a");
  ASSERT_NE(pa, nullptr) << r.body;
  EXPECT_EQ((*pa)["plugin"], "openai");
  EXPECT_EQ((*pa)["healthy"], true);
  EXPECT_EQ((*pa)["drained"], false);
  EXPECT_EQ((*pa)["attempts"], 5);
  EXPECT_EQ((*pa)["in_flight"], 0);
  EXPECT_GT((*pa)["latency_p50_ms"].get<double>(), 0);
  EXPECT_GE((*pa)["latency_p95_ms"].get<double>(), (*pa)["latency_p50_ms"].get<double>());
  EXPECT_EQ((*pa)["models"]["m"]["state"], "closed");
}

TEST(Admin, ListsPipelinesWithTheirRoutingAndErrorPolicy) {
  MockUpstream a, b;
  auto f = Ferryd::start(two(a, b));
  auto j = http_get(f->admin_address(), "/admin/pipelines").json();
  ASSERT_EQ(j["pipelines"].size(), 1u);
  const auto& p = j["pipelines"][0];
  EXPECT_EQ(p["name"], "default");
  EXPECT_EQ(p["providers"], json::Value::array({"a", "b"}));
  EXPECT_EQ(p["router"], "priority");
  EXPECT_EQ(p["on_error"]["client_error"], "return");
  EXPECT_EQ(p["retry"]["max_retries"], 1);
}

TEST(Admin, DrainTakesAProviderOutOfRotationAndEnableBringsItBack) {
  MockUpstream a, b;
  auto f = Ferryd::start(two(a, b));
  auto d = http_post(f->admin_address(), "/admin/providers/a/drain", "");
  ASSERT_EQ(d.status, 200) << d.body;
  EXPECT_EQ(d.json()["drained"], true);
  EXPECT_TRUE(f->log_line("event=provider_drained provider=a"));
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 200);
  EXPECT_EQ(a.requests(), 0);
  EXPECT_EQ(b.requests(), 3);
  EXPECT_EQ((*provider(http_get(f->admin_address(), "/admin/providers").json(), "a"))["drained"], true);
  // Pinning a drained provider is refused rather than sent around the drain.
  EXPECT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"), {{"x-ferry-provider", "a"}})
                .status,
            503);

  ASSERT_EQ(http_post(f->admin_address(), "/admin/providers/a/enable", "").status, 200);
  ASSERT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 200);
  EXPECT_EQ(a.requests(), 1);
}

TEST(Admin, AnswersServiceUnavailableWhenEveryProviderIsDrained) {
  MockUpstream a, b;
  auto f = Ferryd::start(two(a, b));
  http_post(f->admin_address(), "/admin/providers/a/drain", "");
  http_post(f->admin_address(), "/admin/providers/b/drain", "");
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.json()["error"]["code"], "providers_drained");
}

TEST(Admin, RequiresTheBearerTokenWhenOneIsConfigured) {
  MockUpstream a, b;
  auto f = Ferryd::start(two(a, b, "[admin]\ntoken_env = \"FERRY_TEST_ADMIN_TOKEN\"\n\n"), {},
                         {"FERRY_TEST_ADMIN_TOKEN=s3cret-admin"});
  auto none = http_get(f->admin_address(), "/admin/providers");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.header("www-authenticate"), "Bearer");
  EXPECT_EQ(http_get(f->admin_address(), "/admin/providers", {{"authorization", "Bearer wrong"}}).status,
            401);
  EXPECT_EQ(
      http_post(f->admin_address(), "/admin/providers/a/drain", "", {{"authorization", "Bearer s3cret"}})
          .status,
      401);
  EXPECT_EQ(
      http_get(f->admin_address(), "/admin/providers", {{"authorization", "Bearer s3cret-admin"}}).status,
      200);
  EXPECT_EQ(f->output().find("s3cret-admin"), std::string::npos);
}

TEST(Admin, IsNotServedOnTheDataPlane) {
  MockUpstream a, b;
  auto f = Ferryd::start(two(a, b));
  EXPECT_EQ(http_get(f->address(), "/admin/providers").status, 404);
  EXPECT_EQ(http_post(f->address(), "/admin/providers/a/drain", "").status, 404);
  EXPECT_EQ(http_post(f->admin_address(), "/admin/providers/zzz/drain", "").status, 404);
}

TEST(Admin, RefusesATokenVariableThatIsNotSet) {
  MockUpstream a, b;
  auto r = ferryd_refusing(two(a, b, "[admin]\ntoken_env = \"FERRY_TEST_UNSET_TOKEN\"\n\n"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(
                "ferry.toml:2:13: token_env in [admin]: environment variable FERRY_TEST_UNSET_TOKEN is not "
                "set"),
            std::string::npos)
      << r.output;
}

// An empty token would leave the admin API (minting keys, draining
// providers) open to anyone on the machine.
TEST(Admin, RefusesATokenVariableThatIsSetButEmpty) {
  MockUpstream a, b;
  auto r = ferryd_refusing(two(a, b, "[admin]\ntoken_env = \"FERRY_TEST_EMPTY_TOKEN\"\n\n"),
                           {"FERRY_TEST_EMPTY_TOKEN="});
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(
      r.output.find("ferry.toml:2:13: token_env in [admin]: environment variable FERRY_TEST_EMPTY_TOKEN is "
                    "set but empty"),
      std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace ferry::test
