// POST /v1/embeddings through the real ferryd: the openai adapter against the
// project's mock upstream, the in-process mock, failover past a chat-only
// provider, and clear errors.
#include <cmath>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

std::string embed_body(const std::string& model, const std::string& input_json,
                       const std::string& extra = "") {
  return "{\"model\":\"" + model + "\",\"input\":" + input_json + (extra.empty() ? "" : "," + extra) + "}";
}

TEST(Embeddings, GoThroughTheOpenAIAdapterToTheUpstream) {
  MockUpstream up;
  auto f = Ferryd::start("[log]\nlevel = \"info\"\n\n" + openai_provider("up", up) +
                         "[pipelines.embed]\nmodels = [\"text-embedding-3-small\"]\nproviders = [\"up\"]\n");
  auto r =
      http_post(f->address(), "/v1/embeddings",
                embed_body("text-embedding-3-small", R"(["first text", "second one"])", "\"dimensions\":16"),
                {{"x-request-id", "emb-1"}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = r.json();
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][1]["index"], 1);
  EXPECT_EQ(j["data"][0]["embedding"].size(), 16u);
  EXPECT_EQ(up.stats()["last_request"]["path"], "/v1/embeddings");
  // Usage is accounted like a chat's prompt.
  auto line = f->log_line("request_id=emb-1 ");
  ASSERT_TRUE(line);
  EXPECT_NE(line->find("path=/v1/embeddings"), std::string::npos) << *line;
  EXPECT_NE(line->find("tokens_in=4"), std::string::npos) << *line;
}

TEST(Embeddings, FailOverPastAProviderThatOnlyChats) {
  MockUpstream up;
  std::string config = "[providers.claude]\nplugin = \"anthropic\"\nbase_url = \"" + up.url() +
                       "\"\napi_key_env = \"FERRY_TEST_ANTHROPIC_KEY\"\n\n" + openai_provider("up", up) +
                       "[pipelines.embed]\nmodels = [\"e\"]\nproviders = [\"claude\", \"up\"]\n"
                       "[pipelines.only_claude]\nmodels = [\"c\"]\nproviders = [\"claude\"]\n";
  auto f = Ferryd::start(config, {}, {"FERRY_TEST_ANTHROPIC_KEY=ant-test"});
  auto r = http_post(f->address(), "/v1/embeddings", embed_body("e", "\"hello\""));
  EXPECT_EQ(r.status, 200) << r.body;
  auto refused = http_post(f->address(), "/v1/embeddings", embed_body("c", "\"hello\""));
  EXPECT_EQ(refused.status, 502);
  EXPECT_NE(refused.body.find("provider 'claude' does not serve embeddings"), std::string::npos)
      << refused.body;
}

TEST(Embeddings, TheMockProviderPlacesSimilarTextsClose) {
  auto f = Ferryd::start(mock_pipeline());
  auto r = http_post(
      f->address(), "/v1/embeddings",
      embed_body("m", R"(["What is the capital of France?", "what is the capital of france", "bake bread"])",
                 "\"encoding_format\":\"float\""));
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = r.json()["data"];
  auto cosine = [&](int a, int b) {
    double s = 0;
    for (size_t i = 0; i < d[a]["embedding"].size(); ++i)
      s += d[a]["embedding"][i].get<double>() * d[b]["embedding"][i].get<double>();
    return s;
  };
  EXPECT_GT(cosine(0, 1), 0.99);
  EXPECT_LT(cosine(0, 2), 0.5);
}

TEST(Embeddings, AMissingInputIsA400) {
  auto f = Ferryd::start(mock_pipeline());
  auto r = http_post(f->address(), "/v1/embeddings", R"({"model":"m"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"]["code"], "missing_input");
  EXPECT_EQ(http_post(f->address(), "/v1/embeddings", embed_body("nope", "\"x\"")).status, 404);
}

}  // namespace
}  // namespace ferry::test
