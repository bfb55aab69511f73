// What ABI 1.3 gives provider adapters, through the real ferryd and the mock
// upstream's NDJSON chat API, with tests/plugins/ndjson_probe.cpp: streams
// framed as newline-delimited JSON, a stream that ends at EOF (stream_end),
// a request refused as the client's error (upstream_refuse), and an error
// whose class, code and retry-after the adapter names (sink_fail).
#include "tests/integration/common.h"

namespace ferry::test {
namespace {

// Provider "probe" (ndjson-probe at `up`) first, then the in-process mock.
std::string probe_first(const MockUpstream& up, const std::string& pipeline_extra = "") {
  return "plugin_dirs = [\"" + test_plugin_dir() + "\"]\n\n[log]\nlevel = \"info\"\n\n" +
         "[providers.probe]\nplugin = \"ndjson-probe\"\nbase_url = \"" + up.url() +
         "\"\n\n[providers.mock]\nplugin = \"mock\"\n\n"
         "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"probe\", \"mock\"]\nrouter = \"priority\"\n" +
         pipeline_extra;
}

TEST(ProviderAbi, AnNdjsonStreamIsReadLineByLine) {
  MockUpstream up;
  auto f = Ferryd::start(probe_first(up));
  auto s = http_post_sse(
      f->address(), "/v1/chat/completions",
      chat_body("m", "lines of json", R"("stream":true,"stream_options":{"include_usage":true})"),
      {{"x-request-id", "ndjson-1"}});
  EXPECT_TRUE(s.ends_with_done()) << s.raw;
  EXPECT_EQ(s.content(), "mock reply: lines of json") << s.raw;
  EXPECT_NE(s.raw.find("\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}"), std::string::npos)
      << s.raw;
  EXPECT_EQ(up.requests(), 1);
  // Whole answers too.
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "one piece"));
  EXPECT_EQ(r.json()["choices"][0]["message"]["content"], "mock reply: one piece") << r.body;
}

TEST(ProviderAbi, AStreamThatEndsAtEofIsFinishedByTheAdapter) {
  MockUpstream up;
  auto f = Ferryd::start(probe_first(up));
  up.set_faults(R"({"no_usage":true})");  // no closing "done" line: the body just ends
  auto s =
      http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", "ends at eof", R"("stream":true)"));
  EXPECT_TRUE(s.ends_with_done()) << s.raw;
  EXPECT_EQ(s.content(), "mock reply: ends at eof") << s.raw;
  EXPECT_EQ(s.raw.find("stream_interrupted"), std::string::npos) << s.raw;
  EXPECT_EQ(s.raw.find("\"error\""), std::string::npos) << s.raw;
}

TEST(ProviderAbi, ARequestTheAdapterRefusesIsTheClientsErrorNotTheProviders) {
  MockUpstream up;
  auto f = Ferryd::start(probe_first(up));
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "two please", R"("n":2)"),
                     {{"x-request-id", "refused-1"}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "n_unsupported") << r.body;
  EXPECT_NE(error_message(r).find("one choice only"), std::string::npos);
  EXPECT_EQ(up.requests(), 0) << "nothing went upstream";
  ASSERT_TRUE(f->log_line("request_id=refused-1 ")) << f->output();
  EXPECT_TRUE(f->log_line("tried=probe ")) << "the client's error is not failed over: " << f->output();
  auto providers = http_get(f->admin_address(), "/admin/providers").json();
  for (const auto& p : providers["providers"])
    if (p["name"] == "probe") {
      EXPECT_EQ(p["failures"], 0) << "not held against the provider: " << p.dump();
    }
}

TEST(ProviderAbi, AnErrorKeepsTheClassCodeAndRetryAfterTheAdapterGaveIt) {
  MockUpstream up;
  // A 429 is rate_limited by its status (fail over); the adapter says the
  // upstream is busy instead (server_error), which this pipeline returns.
  auto f = Ferryd::start(probe_first(up, "[pipelines.default.on_error]\nserver_error = \"return\"\n"));
  up.set_faults(R"({"status":429})");
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "busy?"));
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "probe_busy") << r.body;
  EXPECT_EQ(r.header("retry-after"), "2");

  // By default a server_error fails over: the mock answers.
  auto g = Ferryd::start(probe_first(up));
  auto ok = http_post(g->address(), "/v1/chat/completions", chat_body("m", "busy?"));
  EXPECT_EQ(ok.status, 200) << ok.body;
}

}  // namespace
}  // namespace ferry::test
