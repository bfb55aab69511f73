// Configuration errors reach the user as file:line:col with what was wrong and
// what was expected; each message is pinned here.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/pipeline/runtime.h"

namespace ferry::config {
namespace {

const std::string kPipeline = R"(
[providers.mock]

[pipelines.default]
models = ["ferry-mock"]
providers = ["mock"]
)";

// All diagnostics of loading `text` (and, if it loads, of building its plugins).
std::vector<std::string> problems(const std::string& text) {
  auto r = load_string(text, "ferry.toml");
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.str());
  if (r.config) {
    std::vector<Diagnostic> errors;
    auto rt = pipeline::Runtime::build(std::shared_ptr<const Config>(std::move(r.config)), errors);
    EXPECT_EQ(rt == nullptr, !errors.empty());
    for (const auto& e : errors) out.push_back(e.str());
  }
  return out;
}

testing::AssertionResult has(const std::vector<std::string>& all, const std::string& expected) {
  for (const auto& p : all)
    if (p == expected) return testing::AssertionSuccess();
  auto r = testing::AssertionFailure() << "missing: " << expected << "\n got:";
  for (const auto& p : all) r << "\n  " << p;
  return r;
}

TEST(Config, TheDefaultConfigLoadsAndBuilds) {
  auto r = load_file(std::string(FERRY_TEST_SOURCE_DIR) + "/config/ferry.toml");
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors.front().str());
  EXPECT_EQ(r.config->server.port, 8080);
  std::vector<Diagnostic> errors;
  auto rt = pipeline::Runtime::build(std::shared_ptr<const Config>(std::move(r.config)), errors);
  ASSERT_TRUE(rt) << (errors.empty() ? "" : errors.front().str());
  EXPECT_NE(rt->pipeline_for_model("ferry-mock"), nullptr);
}

TEST(Config, ReportsTomlSyntaxErrorsWithLineAndColumn) {
  auto p = problems("[server]\nlisten = \"127.0.0.1:8080\nthreads = 2\n");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_TRUE(p[0].starts_with("ferry.toml:2:")) << p[0];
}

TEST(Config, ReportsUnknownKeysAtTheKey) {
  auto p = problems("[server]\n  lisen = \"127.0.0.1:1\"\n" + kPipeline);
  EXPECT_TRUE(has(
      p,
      "ferry.toml:2:3: unknown key 'lisen' in [server] (expected one of: body_timeout_ms, drain_timeout_ms, "
      "header_timeout_ms, idle_timeout_ms, listen, max_body_bytes, threads)"));
}

TEST(Config, ReportsWrongTypes) {
  auto p = problems("[server]\nthreads = \"two\"\n" + kPipeline);
  EXPECT_TRUE(has(p, "ferry.toml:2:11: threads in [server] must be an integer, not a string"));
}

TEST(Config, ReportsValuesOutOfRange) {
  auto p = problems("[server]\nmax_body_bytes = 5\n" + kPipeline);
  EXPECT_TRUE(
      has(p, "ferry.toml:2:18: max_body_bytes in [server] must be between 1024 and 4294967296, not 5"));
}

TEST(Config, ReportsABadListenAddress) {
  auto p = problems("[server]\nlisten = \"localhost\"\n" + kPipeline);
  EXPECT_TRUE(has(
      p,
      "ferry.toml:2:10: listen in [server] must be HOST:PORT, e.g. \"127.0.0.1:8080\", not \"localhost\""));
}

TEST(Config, ReportsAProviderReferencedButNotDefined) {
  auto p = problems(R"([providers.mock]

[pipelines.default]
models = ["m"]
providers = ["mock", "openai"]
)");
  EXPECT_TRUE(
      has(p, "ferry.toml:5:22: provider 'openai' is not defined (defined: mock); add [providers.openai]"));
}

TEST(Config, ReportsAPluginThatCannotBeFound) {
  auto p = problems(R"([providers.main]
plugin = "nonexistent"

[pipelines.default]
models = ["m"]
providers = ["main"]
)");
  ASSERT_FALSE(p.empty());
  EXPECT_TRUE(p[0].starts_with(
      "ferry.toml:2:10: [providers.main]: provider plugin 'nonexistent' not found (looked for "
      "ferry_provider_nonexistent.so in "))
      << p[0];
}

TEST(Config, ReportsAMiddlewareThatCannotBeFoundAtItsReference) {
  auto p = problems(kPipeline + "middleware = [\"logging\", \"nosuch\"]\n");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_TRUE(
      p[0].starts_with("ferry.toml:7:26: middleware 'nosuch' of [pipelines.default]: middleware plugin "
                       "'nosuch' not found"))
      << p[0];
}

TEST(Config, PlacesErrorsReportedByAPluginAtTheOffendingKey) {
  auto p = problems(R"([providers.mock]
latency_ms = "soon"
bogus = 1

[pipelines.default]
models = ["m"]
providers = ["mock"]
)");
  EXPECT_TRUE(has(p, "ferry.toml:2:14: latency_ms in [providers.mock]: expected a number"));
  EXPECT_TRUE(
      has(p,
          "ferry.toml:3:9: bogus in [providers.mock]: unknown key 'bogus' (expected one of: reply_prefix, "
          "latency_ms, model_latency_ms, tokens_per_second, error_status, error_rate, error_message)"));
}

TEST(Config, ReportsARouterThatIsNotARouter) {
  auto p = problems(kPipeline + "router = \"round-robin-typo\"\n");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_TRUE(
      p[0].starts_with("ferry.toml:7:10: the router of [pipelines.default]: router plugin 'round-robin-typo' "
                       "not found"))
      << p[0];
}

TEST(Config, ReportsAModelServedTwice) {
  auto p = problems(kPipeline + R"(
[pipelines.other]
models = ["ferry-mock"]
providers = ["mock"]
)");
  EXPECT_TRUE(has(
      p, "ferry.toml:9:10: model 'ferry-mock' is served by both [pipelines.default] and [pipelines.other]"));
}

TEST(Config, ReportsAPipelineWithoutModels) {
  auto p = problems("[providers.mock]\n[pipelines.default]\nproviders = [\"mock\"]\n");
  EXPECT_TRUE(
      has(p, "ferry.toml:2:1: [pipelines.default] needs models = [\"...\"]: the model names it serves"));
}

TEST(Config, ReportsEveryProblemAtOnce) {
  auto p = problems(R"([server]
threads = -1
colour = "blue"

[providers.mock]

[pipelines.default]
models = ["m"]
providers = ["mock", "ghost"]
)");
  EXPECT_EQ(p.size(), 3u);
}

TEST(Config, ParsesListenAddresses) {
  std::string host;
  uint16_t port = 0;
  EXPECT_TRUE(parse_listen("127.0.0.1:8080", host, port));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 8080);
  EXPECT_TRUE(parse_listen("[::1]:0", host, port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  EXPECT_FALSE(parse_listen("127.0.0.1:99999", host, port));
  EXPECT_FALSE(parse_listen("127.0.0.1", host, port));
}

}  // namespace
}  // namespace ferry::config
