// The ferry command-line tool.
#include <filesystem>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

TEST(Cli, CheckAcceptsTheDefaultConfig) {
  auto r = run({FERRY_TEST_CLI, "check", source_dir() + "/config/ferry.toml"});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("OK (1 pipelines, 1 providers, 1 models)"), std::string::npos) << r.output;
}

TEST(Cli, CheckAcceptsEveryExampleConfig) {
  for (const auto& entry : std::filesystem::directory_iterator(source_dir() + "/config")) {
    if (entry.path().extension() != ".toml") continue;
    auto r = run({FERRY_TEST_CLI, "check", entry.path().string()},
                 {"OPENAI_API_KEY=sk-example", "ANTHROPIC_API_KEY=example", "GROQ_API_KEY=example",
                  "DEEPSEEK_API_KEY=example"});
    EXPECT_EQ(r.status, 0) << entry.path() << ": " << r.output;
  }
}

TEST(Cli, CheckListsEveryErrorWithItsPositionAndExitsTwo) {
  TempDir dir;
  auto path = dir.write("bad.toml", R"([server]
listen = 8080
workers = 4

[providers.mock]
latency_ms = -5

[middleware.log]
plugin = "no-such-plugin"

[pipelines.default]
models = ["m"]
providers = ["mock", "missing"]
middleware = ["log"]
)");
  auto r = run({FERRY_TEST_CLI, "check", path});
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(path + ":2:10: listen in [server] must be a string, not an integer"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(path + ":3:1: unknown key 'workers' in [server]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(path + ":13:22: provider 'missing' is not defined"), std::string::npos) << r.output;
}

TEST(Cli, CheckReportsPluginProblemsOnceTheFileParses) {
  TempDir dir;
  auto path = dir.write("bad.toml", R"([providers.mock]
latency_ms = -5

[middleware.log]
plugin = "no-such-plugin"

[pipelines.default]
models = ["m"]
providers = ["mock"]
middleware = ["log"]
)");
  auto r = run({FERRY_TEST_CLI, "check", path});
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(
      r.output.find(path + ":2:14: latency_ms in [providers.mock]: must be between 0 and 3600000, not -5"),
      std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(path + ":5:10: [middleware.log]: middleware plugin 'no-such-plugin' not found"),
            std::string::npos)
      << r.output;
}

TEST(Cli, PluginsListsTheBuiltIns) {
  auto r = run({FERRY_TEST_CLI, "plugins"});
  EXPECT_EQ(r.status, 0) << r.output;
  for (auto name : {"provider\tmock", "provider\topenai", "provider\tanthropic", "router\tpriority",
                    "router\tround-robin", "middleware\tlogging", "middleware\tdefaults"})
    EXPECT_NE(r.output.find(name), std::string::npos) << name << " missing in:\n" << r.output;
}

}  // namespace
}  // namespace ferry::test
