// Bad input and failing upstreams get a precise OpenAI-shaped error with the
// right status, and ferryd stays up for everyone else.
#include "tests/integration/common.h"

namespace ferry::test {
namespace {

class Errors : public testing::Test {
 protected:
  void SetUp() override {
    f_ = Ferryd::start(
        openai_provider("up", up_, "read_timeout_ms = 300\n") +
        "[server]\nmax_body_bytes = 2048\n\n[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"up\"]\n");
  }
  void TearDown() override {
    // Whatever happened, the daemon still serves a good request.
    auto r = http_post(f_->address(), "/v1/chat/completions", chat_body("m", "still there?"));
    EXPECT_EQ(r.status, 200) << r.body;
  }
  HttpResponse chat(const std::string& body, const HeaderList& headers = {}) {
    return http_post(f_->address(), "/v1/chat/completions", body, headers);
  }

  MockUpstream up_;
  std::unique_ptr<Ferryd> f_;
};

TEST_F(Errors, MalformedJsonIs400) {
  auto r = chat(R"({"model":"m","messages":[)");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_message(r).find("not valid JSON"), std::string::npos) << r.body;
  EXPECT_EQ(r.json()["error"]["type"], "invalid_request_error");
  EXPECT_EQ(r.json()["error"]["code"], "invalid_json");
}

TEST_F(Errors, MissingOrEmptyMessagesIs400) {
  for (auto body :
       {R"({"model":"m"})", R"({"model":"m","messages":[]})", R"({"model":"m","messages":"hi"})"}) {
    auto r = chat(body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(error_message(r).find("'messages'"), std::string::npos) << r.body;
  }
  EXPECT_EQ(up_.requests(), 0);
}

TEST_F(Errors, MissingModelOrANonObjectBodyIs400) {
  EXPECT_EQ(chat(R"({"messages":[{"role":"user","content":"x"}]})").status, 400);
  EXPECT_EQ(chat(R"([1,2,3])").status, 400);
  EXPECT_EQ(chat(R"({"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]})").status, 400);
}

TEST_F(Errors, UnknownModelIs404) {
  auto r = chat(chat_body("gpt-unknown", "x"));
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(error_message(r).find("'gpt-unknown'"), std::string::npos);
  EXPECT_EQ(r.json()["error"]["code"], "model_not_found");
}

TEST_F(Errors, ABodyOverTheLimitIs413) {
  auto r = chat(chat_body("m", std::string(4096, 'x')));
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(error_message(r).find("2048 bytes"), std::string::npos) << r.body;
  EXPECT_EQ(up_.requests(), 0);
}

TEST_F(Errors, AnUpstreamThatTimesOutIs504) {
  auto r = chat(chat_body("m", "slow [[fault:delay_ms=2000]]"));
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_EQ(r.json()["error"]["type"], "timeout_error");
  EXPECT_NE(error_message(r).find("timed out"), std::string::npos) << r.body;
}

TEST_F(Errors, AStreamWhoseUpstreamHangsIs504) {
  auto s = http_post_sse(f_->address(), "/v1/chat/completions",
                         chat_body("m", "x [[fault:hang]]", R"("stream":true)"));
  EXPECT_EQ(s.status, 504) << s.raw;
}

TEST_F(Errors, AnUpstreamAnsweringGarbageIs502) {
  auto r = chat(chat_body("m", "x [[fault:malformed]]"));
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(error_message(r).find("not a JSON object"), std::string::npos) << r.body;
}

TEST_F(Errors, AnUpstreamThatResetsIs502) {
  auto r = chat(chat_body("m", "x [[fault:reset_after]]"));
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "upstream_unavailable");
}

TEST_F(Errors, UnknownRoutesAre404AndWrongMethods405) {
  auto r = http_get(f_->address(), "/v2/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(error_message(r).find("/v2/nothing"), std::string::npos);
  auto m = http_get(f_->address(), "/v1/chat/completions");
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.header("allow"), "POST");
}

TEST(UpstreamDown, AnUnreachableUpstreamIs502) {
  MockUpstream up;
  auto config = openai_provider("up", up) + "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"up\"]\n";
  up.kill();
  auto f = Ferryd::start(config);
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_NE(error_message(r).find("Connection refused"), std::string::npos) << r.body;
  expect_healthy(f->address());
}

}  // namespace
}  // namespace ferry::test
