// Configuration validation: what a provider plugin refuses in its TOML table
// comes back through host->config_error() as a diagnostic placed at the
// file:line:col of the offending key, and the instance is not created.
#include <algorithm>
#include <cstdlib>

#include <gtest/gtest.h>

#include "adapter_harness.h"

namespace ferry::adapter_test {
namespace {

::testing::AssertionResult Contains(const std::string& text, std::string_view part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

// One refused configuration: the plugin said FERRY_ERR_CONFIG and reported
// exactly one problem.
const config::Diagnostic& only_error(const Created& c) {
  static const config::Diagnostic kNone{{}, "<no diagnostic>"};
  EXPECT_EQ(c.adapter, nullptr);
  EXPECT_EQ(c.status, FERRY_ERR_CONFIG);
  EXPECT_EQ(c.errors.size(), 1u) << c.messages();
  return c.errors.empty() ? kNone : c.errors.front();
}

// ------------------------------------------------------------ openai

TEST(OpenAIConfig, RejectsABaseUrlWithoutHttpAtItsLine) {
  auto c = create_adapter_from_toml(R"([providers.gpt]
plugin = "openai"
base_url = "api.openai.com/v1"
)",
                                    "gpt");
  const auto& d = only_error(c);
  EXPECT_EQ(d.message, "base_url in [providers.gpt]: must start with http:// or https://");
  EXPECT_EQ(d.pos.file, "adapters.toml");
  EXPECT_EQ(d.pos.line, 3u);
  EXPECT_EQ(d.pos.column, 12u);  // the value
}

TEST(OpenAIConfig, NamesAnUnsetApiKeyVariable) {
  ::unsetenv("FERRY_TEST_OPENAI_KEY_NEVER_SET");
  auto c = create_adapter_from_toml(R"([providers.gpt]
plugin = "openai"
api_key_env = "FERRY_TEST_OPENAI_KEY_NEVER_SET"
)",
                                    "gpt");
  const auto& d = only_error(c);
  EXPECT_TRUE(Contains(d.message, "api_key_env in [providers.gpt]"));
  EXPECT_TRUE(Contains(d.message, "environment variable FERRY_TEST_OPENAI_KEY_NEVER_SET is not set"));
  EXPECT_EQ(d.pos.line, 3u);
}

TEST(OpenAIConfig, RejectsUnknownKeysListingTheKnownOnes) {
  auto c = create_adapter_from_toml(R"([providers.gpt]
plugin = "openai"
base_ulr = "https://api.openai.com/v1"
)",
                                    "gpt");
  const auto& d = only_error(c);
  EXPECT_EQ(d.message,
            "base_ulr in [providers.gpt]: unknown key 'base_ulr' (expected one of: base_url, api_key_env, "
            "api_key_envs, model, headers)");
  EXPECT_EQ(d.pos.line, 3u);
}

TEST(OpenAIConfig, RejectsAModelThatIsNotAString) {
  auto c = create_adapter("openai", {{"model", 4}});
  EXPECT_TRUE(Contains(only_error(c).message, "model in [providers.openai]: expected a string"));
}

TEST(OpenAIConfig, RejectsAHeaderValueThatIsNotAString) {
  auto c = create_adapter_from_toml(R"([providers.gpt]
plugin = "openai"
base_url = "http://localhost:8000/v1"

[providers.gpt.headers]
x-tenant = "ferry"
x-retries = 3
)",
                                    "gpt");
  const auto& d = only_error(c);
  EXPECT_EQ(d.message, "headers.x-retries in [providers.gpt]: expected a string");
  EXPECT_EQ(d.pos.line, 7u);
}

TEST(OpenAIConfig, RejectsHeadersThatAreNotATable) {
  auto c = create_adapter_from_toml(R"([providers.gpt]
plugin = "openai"
headers = "x-tenant: ferry"
)",
                                    "gpt");
  const auto& d = only_error(c);
  EXPECT_TRUE(Contains(d.message, "headers in [providers.gpt]:"));
  EXPECT_EQ(d.pos.line, 3u);
}

TEST(OpenAIConfig, AcceptsAFullValidTable) {
  ::setenv("FERRY_TEST_OPENAI_KEY", "sk-ferry-test-openai", 1);
  auto c = create_adapter_from_toml(R"([providers.gpt]
plugin = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "FERRY_TEST_OPENAI_KEY"
model = "gpt-4o-mini"
connect_timeout_ms = 2000
headers = { "OpenAI-Organization" = "org-ferry-tests" }
)",
                                    "gpt");
  EXPECT_TRUE(c.adapter) << c.messages();
  EXPECT_EQ(c.status, FERRY_OK);
  EXPECT_TRUE(c.errors.empty()) << c.messages();
}

// ------------------------------------------------------------ anthropic

TEST(AnthropicConfig, NamesTheDefaultApiKeyVariableWhenItIsUnset) {
  ::unsetenv("ANTHROPIC_API_KEY");
  auto c = create_adapter_from_toml(R"([providers.claude]
plugin = "anthropic"
)",
                                    "claude");
  const auto& d = only_error(c);
  EXPECT_EQ(d.message,
            "api_key_env in [providers.claude]: environment variable ANTHROPIC_API_KEY is not set (it "
            "should hold the API key)");
  // No api_key_env key in the table: the block itself is blamed.
  EXPECT_EQ(d.pos.line, 2u);
}

TEST(AnthropicConfig, NamesAnUnsetConfiguredApiKeyVariable) {
  ::unsetenv("FERRY_TEST_ANTHROPIC_KEY_NEVER_SET");
  auto c = create_adapter_from_toml(R"([providers.claude]
plugin = "anthropic"
api_key_env = "FERRY_TEST_ANTHROPIC_KEY_NEVER_SET"
)",
                                    "claude");
  const auto& d = only_error(c);
  EXPECT_TRUE(Contains(d.message, "environment variable FERRY_TEST_ANTHROPIC_KEY_NEVER_SET is not set"));
  EXPECT_EQ(d.pos.line, 3u);
}

TEST(AnthropicConfig, RejectsABaseUrlWithoutHttp) {
  ::setenv("FERRY_TEST_ANTHROPIC_KEY", "sk-ant-api03-ferry-test", 1);
  auto c = create_adapter_from_toml(R"([providers.claude]
plugin = "anthropic"
api_key_env = "FERRY_TEST_ANTHROPIC_KEY"
base_url = "api.anthropic.com"
)",
                                    "claude");
  const auto& d = only_error(c);
  EXPECT_EQ(d.message, "base_url in [providers.claude]: must start with http:// or https://");
  EXPECT_EQ(d.pos.line, 4u);
}

TEST(AnthropicConfig, RejectsAMaxTokensDefaultOutOfRange) {
  ::setenv("FERRY_TEST_ANTHROPIC_KEY", "sk-ant-api03-ferry-test", 1);
  auto c = create_adapter_from_toml(R"([providers.claude]
plugin = "anthropic"
api_key_env = "FERRY_TEST_ANTHROPIC_KEY"
max_tokens_default = 0
)",
                                    "claude");
  const auto& d = only_error(c);
  EXPECT_TRUE(Contains(d.message, "max_tokens_default in [providers.claude]: must be between"));
  EXPECT_EQ(d.pos.line, 4u);
}

TEST(AnthropicConfig, ReportsEveryProblemNotJustTheFirst) {
  ::unsetenv("FERRY_TEST_ANTHROPIC_KEY_NEVER_SET");
  auto c = create_adapter_from_toml(R"([providers.claude]
plugin = "anthropic"
api_key_env = "FERRY_TEST_ANTHROPIC_KEY_NEVER_SET"
base_url = "ftp://example.com"
verison = "2023-06-01"
)",
                                    "claude");
  EXPECT_EQ(c.adapter, nullptr);
  EXPECT_EQ(c.status, FERRY_ERR_CONFIG);
  ASSERT_EQ(c.errors.size(), 3u) << c.messages();
  std::vector<uint32_t> lines;
  for (const auto& d : c.errors) lines.push_back(d.pos.line);
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<uint32_t>{3, 4, 5}));
}

// ------------------------------------------------------------ mock

TEST(MockConfig, RejectsUnknownKeys) {
  auto c = create_adapter_from_toml(R"([providers.fake]
plugin = "mock"
latency = 100
)",
                                    "fake");
  const auto& d = only_error(c);
  EXPECT_TRUE(Contains(d.message, "unknown key 'latency'"));
  EXPECT_TRUE(Contains(d.message, "latency_ms"));
  EXPECT_EQ(d.pos.line, 3u);
}

TEST(MockConfig, RejectsErrorStatus200) {
  auto c = create_adapter_from_toml(R"([providers.fake]
plugin = "mock"
error_status = 200
)",
                                    "fake");
  const auto& d = only_error(c);
  EXPECT_EQ(d.message, "error_status in [providers.fake]: must be 0 (off) or 400..599");
  EXPECT_EQ(d.pos.line, 3u);
}

TEST(MockConfig, RejectsAnErrorRateAboveOne) {
  auto c = create_adapter("mock", {{"error_status", 503}, {"error_rate", 1.5}});
  EXPECT_TRUE(Contains(only_error(c).message, "error_rate in [providers.mock]: must be between"));
}

TEST(MockConfig, RejectsALatencyThatIsNotANumber) {
  auto c = create_adapter("mock", {{"latency_ms", "fast"}});
  EXPECT_EQ(only_error(c).message, "latency_ms in [providers.mock]: expected a number");
}

TEST(MockConfig, AcceptsAnEmptyTable) {
  auto c = create_adapter_from_toml("[providers.fake]\nplugin = \"mock\"\n", "fake");
  EXPECT_TRUE(c.adapter) << c.messages();
  EXPECT_TRUE(c.errors.empty()) << c.messages();
}

}  // namespace
}  // namespace ferry::adapter_test
