// ferryd and plugins of the wrong ABI, or that are not plugins at all.
#include <ferry/version.h>

#include <algorithm>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

std::string with_middleware_file(const std::string& file) {
  return "[middleware.extra]\nplugin = \"" + std::string(FERRY_TEST_ABI_PLUGIN_DIR) + "/" + file + "\"\n\n" +
         mock_pipeline("", "middleware = [\"extra\"]");
}

TEST(PluginAbi, FerrydRefusesAWrongMajorWithOneLineAndExitsTwo) {
  auto r = ferryd_refusing(with_middleware_file("ferry_middleware_wrong_major.so"));
  EXPECT_EQ(r.status, 2) << r.output;
  auto at = r.output.find(
      "ferry_middleware_wrong_major.so: built against Ferry ABI 2.0, but this ferryd speaks ABI " +
      std::to_string(FERRY_ABI_MAJOR) + "." + std::to_string(FERRY_ABI_MINOR));
  EXPECT_NE(at, std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/ferry.toml:2:10: [middleware.extra]: plugin /"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(PluginAbi, FerrydRefusesALibraryWithoutTheEntrySymbol) {
  auto r = ferryd_refusing(with_middleware_file("ferry_middleware_no_entry.so"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("not a Ferry plugin: it does not export ferry_plugin_negotiate"), std::string::npos)
      << r.output;
}

TEST(PluginAbi, APluginBuiltAgainstTheFrozen10HeadersStillWorks) {
  auto f = Ferryd::start(with_middleware_file("ferry_middleware_legacy.so"));
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-legacy-plugin"), "1.0");
}

std::string abi_plugin(const std::string& file) {
  return std::string(FERRY_TEST_ABI_PLUGIN_DIR) + "/" + file;
}

// [providers.legacy]: the pure C 1.0 adapter (tests/abi/plugins/legacy_provider_1_0.c)
// in front of a mock upstream, then the pipeline "default" (model "m") over
// `providers`.
std::string legacy_provider(const MockUpstream& up, const std::string& options = "",
                            const std::string& providers = "\"legacy\"") {
  return "[log]\nlevel = \"info\"\n\n[providers.legacy]\nplugin = \"" +
         abi_plugin("ferry_provider_legacy.so") + "\"\nbase_url = \"" + up.url() + "/v1/\"\n" + options +
         "\n[providers.backup]\nplugin = \"mock\"\nreply_prefix = \"backup:\"\n\n"
         "[pipelines.default]\nmodels = [\"m\"]\nproviders = [" +
         providers + "]\n";
}

TEST(PluginAbi, AFrozen10ProviderBuildsTheUpstreamRequestAndParsesTheAnswer) {
  MockUpstream up;
  auto f = Ferryd::start(legacy_provider(up, "api_key_env = \"LEGACY_TEST_KEY\"\nmodel = \"mock-large\"\n"),
                         {}, {"LEGACY_TEST_KEY=sk-legacy-secret"});
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hello there"));
  ASSERT_EQ(r.status, 200) << r.body;
  auto answer = r.json();
  // The upstream's answer, as the C adapter's parse_response handed it on.
  EXPECT_EQ(answer["choices"][0]["message"]["content"], "mock reply: hello there") << r.body;
  EXPECT_EQ(answer["model"], "mock-large") << r.body;
  EXPECT_EQ(answer["system_fingerprint"], "ferry-legacy-c") << r.body;
  EXPECT_EQ(answer["usage"]["completion_tokens"], 4) << r.body;

  // The request the C adapter's build_request made, as the upstream saw it.
  auto seen = up.stats()["last_request"];
  EXPECT_EQ(seen["method"], "POST");
  EXPECT_EQ(seen["path"], "/v1/chat/completions");
  EXPECT_EQ(seen["headers"]["authorization"], "Bearer sk-legacy-secret") << seen.dump();
  EXPECT_EQ(seen["headers"]["x-legacy-provider"], "1.0") << seen.dump();
  EXPECT_EQ(seen["headers"]["content-type"], "application/json") << seen.dump();
  EXPECT_EQ(seen["body"]["model"], "mock-large") << seen.dump();
  EXPECT_EQ(seen["body"]["messages"][0]["content"], "hello there") << seen.dump();
  // A header the adapter marked sensitive is never logged.
  ASSERT_TRUE(f->log_line("status=200"));
  EXPECT_EQ(f->output().find("sk-legacy-secret"), std::string::npos) << f->output();
}

TEST(PluginAbi, AFrozen10ProviderReportsUpstreamErrorsSoThatFailoverFollowsTheStatus) {
  MockUpstream up;
  auto f = Ferryd::start(legacy_provider(up, "", "\"legacy\", \"backup\""));
  // A client error goes back to the client with the upstream's message.
  up.set_faults(R"({"status":400,"count":1})");
  auto refused = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_NE(error_message(refused).find("legacy upstream HTTP 400: mock fault: injected HTTP 400"),
            std::string::npos)
      << refused.body;
  // A server error fails over to the next provider.
  up.set_faults(R"({"status":503,"count":1})");
  auto moved = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  ASSERT_EQ(moved.status, 200) << moved.body;
  EXPECT_EQ(moved.json()["choices"][0]["message"]["content"], "backup: x") << moved.body;
  EXPECT_TRUE(f->log_line("tried=legacy,backup")) << f->output();
  EXPECT_EQ(up.requests(), 2);
}

TEST(PluginAbi, AFrozen10ProviderStreamsWithItsOwnPerStreamState) {
  MockUpstream up;
  auto f = Ferryd::start(legacy_provider(up));
  for (int round = 0; round < 2; ++round) {
    auto s = http_post_sse(f->address(), "/v1/chat/completions",
                           chat_body("m", "one two three", R"("stream":true)"));
    ASSERT_EQ(s.status, 200) << s.raw;
    ASSERT_TRUE(s.ends_with_done()) << s.raw;
    EXPECT_EQ(s.content(), "mock reply: one two three") << s.raw;
    auto chunks = s.chunks();
    ASSERT_GE(chunks.size(), 5u) << s.raw;  // role, four words, finish
    // Each stream has its own state (stream_open/stream_close): the count
    // starts at 1 again and goes up by one per chunk delivered.
    for (size_t i = 0; i < chunks.size(); ++i) {
      EXPECT_EQ(chunks[i]["system_fingerprint"], "ferry-legacy-c") << s.raw;
      EXPECT_EQ(chunks[i]["x_legacy_seq"], i + 1) << s.raw;
    }
    EXPECT_EQ(chunks.back()["choices"][0]["finish_reason"], "stop") << s.raw;
    // The adapter asked the upstream for a stream.
    auto seen = up.stats()["last_request"]["body"];
    EXPECT_EQ(seen["stream"], true) << seen.dump();
  }
}

TEST(PluginAbi, AFrozen10RouterOrdersTheFallbackChain) {
  std::string router = abi_plugin("ferry_router_legacy.so");
  auto f = Ferryd::start(R"(
[providers.a]
plugin = "mock"
reply_prefix = "from-a:"

[providers.b]
plugin = "mock"
reply_prefix = "from-b:"

[providers.c]
plugin = "mock"
reply_prefix = "from-c:"

[providers.down]
plugin = "mock"
error_status = 503

[pipelines.all]
models = ["m"]
providers = ["a", "b", "c"]
router = { plugin = ")" + router +
                         R"(" }

[pipelines.failing]
models = ["f"]
providers = ["a", "b", "down"]
router = ")" + router + R"("
)");
  auto content = [&](const std::string& model) {
    auto r = http_post(f->address(), "/v1/chat/completions", chat_body(model, "x"));
    return r.status == 200 ? r.json()["choices"][0]["message"]["content"].get<std::string>()
                           : "status " + std::to_string(r.status) + ": " + r.body;
  };
  // The last candidate first, every time (no randomness in this router).
  for (int i = 0; i < 5; ++i) EXPECT_EQ(content("m"), "from-c: x");
  EXPECT_TRUE(f->log_line("legacy router order=c,b,a")) << f->output();
  // The order is the fallback chain: the last one fails, the one before answers.
  EXPECT_EQ(content("f"), "from-b: x");
  EXPECT_TRUE(f->log_line("legacy router order=down,b,a")) << f->output();
  EXPECT_TRUE(f->log_line("tried=down,b ")) << f->output();
}

}  // namespace
}  // namespace ferry::test
