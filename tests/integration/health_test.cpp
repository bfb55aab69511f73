// Active health checks: a provider whose probes fail leaves routing, and
// comes back when they pass again.
#include <thread>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

std::string admin_state(Ferryd& f, const std::string& name) {
  auto j = http_get(f.admin_address(), "/admin/providers").json();
  for (const auto& p : j["providers"])
    if (p["name"] == name)
      return p["health_check"].is_object() ? p["health_check"].value("state", "") : "off";
  return "?";
}

TEST(HealthCheck, TakesADeadUpstreamOutOfRoutingAndBringsItBack) {
  auto a = std::make_unique<MockUpstream>();
  MockUpstream b;
  std::string a_address = a->address();
  auto f = Ferryd::start(openai_provider("a", *a,
                                         "[providers.a.health_check]\ninterval_ms = 50\ntimeout_ms = 500\n"
                                         "unhealthy_after = 2\nhealthy_after = 2\n") +
                         openai_provider("b", b) +
                         "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\", \"b\"]\n");
  ASSERT_TRUE(eventually([&] { return admin_state(*f, "a") == "healthy"; }));
  EXPECT_GT(a->stats()["by_path"].value("/v1/models", 0), 0);  // the probe is GET /v1/models

  a.reset();  // a's process is gone: probes are refused
  ASSERT_TRUE(f->log_line("event=health_changed provider=a detail=\"unhealthy: ")) << f->output();
  EXPECT_EQ(admin_state(*f, "a"), "unhealthy");
  EXPECT_EQ(http_get(f->address(), "/health").json()["providers"][0]["healthy"], false);
  // Requests now go straight to b: a is not even tried.
  auto r =
      http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"), {{"x-request-id", "while-down"}});
  EXPECT_EQ(r.status, 200) << r.body;
  auto line = f->log_line("access request_id=while-down ");
  ASSERT_TRUE(line);
  EXPECT_NE(line->find("tried=b attempts=1"), std::string::npos) << *line;

  // a comes back on the same address: two good probes put it back in routing.
  a = std::make_unique<MockUpstream>(std::vector<std::string>{"--listen", a_address});
  ASSERT_EQ(a->address(), a_address);
  ASSERT_TRUE(f->log_line("event=health_changed provider=a detail=\"healthy\"")) << f->output();
  r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(a->stats()["by_path"].value("/v1/chat/completions", 0), 1);
}

TEST(HealthCheck, IsRefusedForAProviderWithoutAProbe) {
  auto r = ferryd_refusing(R"([providers.mock]
plugin = "mock"
[providers.mock.health_check]
interval_ms = 1000

[pipelines.default]
models = ["m"]
providers = ["mock"]
)");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(
      r.output.find(
          "ferry.toml:3:1: health_check in [providers.mock]: provider plugin 'mock' has no health probe"),
      std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace ferry::test
