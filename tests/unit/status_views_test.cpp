// The gateway's status views (host/ferryd/status_views, admin_api) as plain
// functions of a Runtime: no listener, no sockets.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <memory>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/json/doc.h"
#include "core/pipeline/runtime.h"
#include "host/ferryd/admin_api.h"
#include "host/ferryd/status_views.h"

namespace ferry::host {
namespace {

using json::Value;

std::unique_ptr<pipeline::Runtime> runtime() {
  auto r = config::load_string(R"(
[providers.mock]
[providers.spare]
plugin = "mock"

[pipelines.default]
models = ["ferry-mock", "claude-*"]
providers = ["mock", "spare"]
)",
                               "ferry.toml");
  EXPECT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors.front().str());
  std::vector<config::Diagnostic> errors;
  auto rt = pipeline::Runtime::build(std::shared_ptr<const config::Config>(std::move(r.config)), errors);
  EXPECT_TRUE(rt) << (errors.empty() ? "" : errors.front().str());
  return rt;
}

Value parse(const std::string& text) { return Value::parse(text); }

std::pair<int, std::string> admin(const AdminApi& api, std::string_view method, std::string_view target,
                                  std::string_view authorization = {}) {
  boost::asio::io_context io;
  AdminRequest req{method, target, authorization, {}};
  auto f = boost::asio::co_spawn(io, api.handle(req, io.get_executor()), boost::asio::use_future);
  io.run();
  return f.get();
}

TEST(StatusViews, HealthReportsProvidersPipelinesAndDraining) {
  auto rt = runtime();
  ASSERT_TRUE(rt);
  ServerState state;
  Value h = parse(health_json(*rt, state));
  EXPECT_EQ(h["status"], "ok");
  ASSERT_EQ(h["providers"].size(), 2u);
  EXPECT_EQ(h["providers"][0]["name"], "mock");
  EXPECT_EQ(h["providers"][0]["healthy"], true);
  EXPECT_EQ(h["pipelines"][0]["models"], (Value{"ferry-mock", "claude-*"}));
  state.draining = true;
  rt->providers()[1]->health->set_probe_failing(true);
  h = parse(health_json(*rt, state));
  EXPECT_EQ(h["status"], "draining");
  EXPECT_EQ(h["providers"][1]["healthy"], false);
}

TEST(StatusViews, ModelListLeavesOutPatterns) {
  auto rt = runtime();
  ASSERT_TRUE(rt);
  ASSERT_FALSE(rt->frontends().empty());
  Value m = parse(models_json(*rt, *rt->frontends().front(), 1700000000));
  EXPECT_EQ(m["object"], "list");
  ASSERT_EQ(m["data"].size(), 1u);
  EXPECT_EQ(m["data"][0], (Value{{"id", "ferry-mock"},
                                 {"object", "model"},
                                 {"created", 1700000000},
                                 {"owned_by", "ferry:default"}}));
}

TEST(StatusViews, AdminPipelinesShowRetryPolicyAndErrorActions) {
  auto rt = runtime();
  ASSERT_TRUE(rt);
  Value p = parse(admin_pipelines_json(*rt))["pipelines"][0];
  EXPECT_EQ(p["name"], "default");
  EXPECT_EQ(p["providers"], (Value{"mock", "spare"}));
  EXPECT_TRUE(p["retry"].contains("max_retries"));
  EXPECT_TRUE(p["on_error"].is_object());
  EXPECT_FALSE(p["on_error"].empty());
}

TEST(StatusViews, MetricsSetTheSampledGauges) {
  auto rt = runtime();
  ASSERT_TRUE(rt);
  Traffic t;
  t.open_connections = 3;
  t.active_requests = 2;
  std::string text = metrics_text(*rt, t);
  EXPECT_NE(text.find("ferry_open_connections 3"), std::string::npos) << text;
  EXPECT_NE(text.find("ferry_active_requests 2"), std::string::npos) << text;
  EXPECT_NE(text.find("ferry_provider_in_flight{provider=\"spare\"}"), std::string::npos) << text;
}

TEST(AdminApi, EveryRouteNeedsTheTokenWhenOneIsSet) {
  auto rt = runtime();
  ASSERT_TRUE(rt);
  ServerState state;
  AdminApi api(*rt, state, "s3cret");
  EXPECT_FALSE(api.authorized(""));
  EXPECT_FALSE(api.authorized("Bearer s3cre"));
  EXPECT_FALSE(api.authorized("Basic s3cret"));
  EXPECT_TRUE(api.authorized("Bearer s3cret"));
  EXPECT_EQ(admin(api, "GET", "/admin/providers").first, 401);
  EXPECT_EQ(admin(api, "GET", "/admin/plugins/cache/stats").first, 401);
  EXPECT_EQ(admin(api, "GET", "/health", "Bearer nope").first, 401);
  EXPECT_EQ(admin(api, "GET", "/health", "Bearer s3cret").first, 200);
  EXPECT_TRUE(AdminApi(*rt, state, "").authorized(""));
}

TEST(AdminApi, DrainTakesAProviderOutOfRotationAndShowsIt) {
  auto rt = runtime();
  ASSERT_TRUE(rt);
  ServerState state;
  AdminApi api(*rt, state, "");
  auto [status, body] = admin(api, "POST", "/admin/providers/spare/drain");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, R"({"name":"spare","drained":true})");
  EXPECT_FALSE(rt->providers()[1]->available());
  Value providers = parse(admin_providers_json(*rt))["providers"];
  EXPECT_EQ(providers[1]["drained"], true);
  EXPECT_EQ(providers[1]["health_check"], "off");
  EXPECT_EQ(admin(api, "POST", "/admin/providers/spare/enable").first, 200);
  EXPECT_TRUE(rt->providers()[1]->available());
  EXPECT_EQ(admin(api, "POST", "/admin/providers/nobody/drain").first, 404);
  EXPECT_EQ(admin(api, "GET", "/admin/providers/spare/drain").first, 404);
}

}  // namespace
}  // namespace ferry::host
