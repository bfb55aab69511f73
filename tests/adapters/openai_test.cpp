// The openai provider: an OpenAI-compatible upstream, so the transforms are
// (almost) byte passthrough; what matters is the upstream request it builds
// and how it turns upstream failures into sink errors.
#include <cstdlib>

#include <gtest/gtest.h>

#include "adapter_harness.h"

namespace ferry::adapter_test {
namespace {

using Kind = pipeline::SinkEvent::Kind;

constexpr const char* kKeyEnv = "FERRY_TEST_OPENAI_KEY";
constexpr const char* kKey = "sk-ferry-test-openai";

class OpenAI : public ::testing::Test {
 protected:
  // The host reads each secret once per process and keeps it, so the value
  // is the same in every test.
  void SetUp() override { ::setenv(kKeyEnv, kKey, 1); }

  std::unique_ptr<Adapter> make(const Json& options) {
    auto created = create_adapter("openai", options);
    EXPECT_TRUE(created.adapter) << created.messages();
    return std::move(created.adapter);
  }
  std::unique_ptr<Adapter> make() { return make({{"api_key_env", kKeyEnv}}); }
};

// ------------------------------------------------------------ build_request

TEST_F(OpenAI, BuildsUrlAuthorizationAndExtraHeadersAndPassesTheBodyThrough) {
  auto a =
      make({{"base_url", "https://llm.internal.example:8443/v1/"},
            {"api_key_env", kKeyEnv},
            {"headers",
             {{"OpenAI-Organization", "org-ferry-tests"}, {"x-request-source", "ferry-adapter-tests"}}}});
  ASSERT_TRUE(a);
  auto up = a->build_request(read_golden("openai/build_request/chat.input.json"));
  ASSERT_EQ(up.status, FERRY_OK);
  EXPECT_TRUE(matches_golden(up.to_json(), "openai/build_request/chat.expected.json"));
}

TEST_F(OpenAI, MarksTheAuthorizationHeaderSensitive) {
  auto a = make();
  ASSERT_TRUE(a);
  auto up = a->build_request(read_golden("openai/build_request/chat.input.json"));
  EXPECT_EQ(up.header("authorization"), std::string("Bearer ") + kKey);
  EXPECT_TRUE(up.sensitive("authorization"));
  EXPECT_FALSE(up.sensitive("content-type"));
}

TEST_F(OpenAI, DefaultsToTheOpenAIEndpoint) {
  auto a = make();
  ASSERT_TRUE(a);
  auto up = a->build_request(read_golden("openai/build_request/chat.input.json"));
  EXPECT_EQ(up.url, "https://api.openai.com/v1/chat/completions");
  EXPECT_EQ(up.method, "POST");
}

TEST_F(OpenAI, OverridesTheModelWithoutTouchingTheCanonicalRequest) {
  auto a = make({{"api_key_env", kKeyEnv}, {"model", "gpt-4.1-2025-04-14"}});
  ASSERT_TRUE(a);
  auto input = read_golden("openai/build_request/chat.input.json");
  auto up = a->build_request(input);
  ASSERT_EQ(up.status, FERRY_OK);
  EXPECT_TRUE(matches_golden(up.to_json(), "openai/build_request/chat_model_override.expected.json"));
  // The request is read-only for providers: the override went into a copy.
  EXPECT_EQ(up.request_after, Json::parse(input));
}

TEST_F(OpenAI, SendsNoAuthorizationWithoutApiKeyEnvAndStreamsWhenAsked) {
  auto a = make({{"base_url", "http://localhost:11434/v1"}});
  ASSERT_TRUE(a);
  auto up = a->build_request(read_golden("openai/build_request/stream_tools.input.json"));
  ASSERT_EQ(up.status, FERRY_OK);
  EXPECT_TRUE(matches_golden(up.to_json(), "openai/build_request/stream_tools.expected.json"));
  EXPECT_FALSE(up.has_header("authorization"));
  EXPECT_TRUE(up.streaming);
}

TEST_F(OpenAI, PassesTheRequestBodyThroughUnchanged) {
  auto a = make();
  ASSERT_TRUE(a);
  for (const char* name : {"chat", "stream_tools"}) {
    auto input = read_golden(std::string("openai/build_request/") + name + ".input.json");
    auto up = a->build_request(input);
    EXPECT_EQ(up.body_json(), Json::parse(input)) << name;
    EXPECT_EQ(up.request_after, Json::parse(input)) << name;
  }
}

// ------------------------------------------------------------ parse_response

TEST_F(OpenAI, PassesA200CompletionThroughVerbatim) {
  auto a = make();
  ASSERT_TRUE(a);
  auto body = read_golden("openai/parse_response/completion.body.json");
  auto r = a->parse_response(200, body);
  EXPECT_EQ(r.status, FERRY_OK);
  ASSERT_EQ(r.events.size(), 1u);
  ASSERT_EQ(r.events[0].kind, Kind::kResponse);
  EXPECT_EQ(text(r.events[0]), body);  // byte for byte, created included
}

TEST_F(OpenAI, Turns200WithANonJsonBodyInto502) {
  auto a = make();
  ASSERT_TRUE(a);
  auto body = read_golden("openai/parse_response/gateway_html.body.txt");
  auto r = a->parse_response(200, body);
  ASSERT_EQ(r.events.size(), 1u);
  const auto& e = r.events[0];
  ASSERT_EQ(e.kind, Kind::kError);
  EXPECT_EQ(e.status, 502);
  EXPECT_EQ(e.type, "upstream_error");
  EXPECT_NE(e.message.find("not a JSON object"), std::string::npos) << e.message;
  // A one-line snippet of what came back, for the operator.
  EXPECT_NE(e.message.find("<title>502 Bad Gateway</title>"), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find('\n'), std::string::npos) << e.message;
}

TEST_F(OpenAI, Turns200WithoutChoicesInto502) {
  auto a = make();
  ASSERT_TRUE(a);
  auto r = a->parse_response(200, R"({"id":"chatcmpl-x","object":"chat.completion","created":1})");
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].kind, Kind::kError);
  EXPECT_EQ(r.events[0].status, 502);
  EXPECT_NE(r.events[0].message.find("no choices"), std::string::npos) << r.events[0].message;
}

struct ErrorCase {
  const char* name;
  int status;
};
// How gtest (and so ctest) names the parameter.
void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name << ":" << c.status; }

class OpenAIErrorBody : public OpenAI, public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(OpenAIErrorBody, BecomesASinkErrorWithTheUpstreamStatusAndMessage) {
  auto a = make();
  ASSERT_TRUE(a);
  std::string base = std::string("openai/parse_response/") + GetParam().name;
  auto r = a->parse_response(GetParam().status, read_golden(base + ".body.json"));
  EXPECT_TRUE(matches_golden(r.json(), base + ".expected.json"));
}

INSTANTIATE_TEST_SUITE_P(OpenAI, OpenAIErrorBody,
                         ::testing::Values(ErrorCase{"rate_limited", 429}, ErrorCase{"server_error", 500},
                                           ErrorCase{"bad_request", 400}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(OpenAI, KeepsTheStatusOfANonJsonErrorBodyWithADefaultType) {
  auto a = make();
  ASSERT_TRUE(a);
  auto body = read_golden("openai/parse_response/gateway_html.body.txt");
  for (int status : {503, 429, 404}) {
    auto r = a->parse_response(status, body);
    ASSERT_EQ(r.events.size(), 1u) << status;
    const auto& e = r.events[0];
    EXPECT_EQ(e.kind, Kind::kError);
    EXPECT_EQ(e.status, status);
    EXPECT_EQ(e.type, status == 429   ? "rate_limit_error"
                      : status >= 500 ? "server_error"
                                      : "invalid_request_error");
    EXPECT_TRUE(e.message.starts_with("upstream HTTP " + std::to_string(status) + ": <html>")) << e.message;
  }
}

// ------------------------------------------------------------ parse_event

TEST_F(OpenAI, PassesEveryStreamChunkThroughVerbatimAndEndsOnDone) {
  auto a = make();
  ASSERT_TRUE(a);
  auto events = parse_sse(read_golden("openai/stream/chat.sse"));
  ASSERT_EQ(events.size(), 6u);
  auto r = a->stream(events);
  EXPECT_EQ(r.status, FERRY_OK);
  ASSERT_EQ(r.events.size(), 6u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(r.events[i].kind, Kind::kChunk) << i;
    EXPECT_EQ(text(r.events[i]), events[i].data) << i;
  }
  EXPECT_EQ(r.events[5].kind, Kind::kDone);
}

TEST_F(OpenAI, TreatsDoneAsTheEndOfTheStream) {
  auto a = make();
  ASSERT_TRUE(a);
  auto r = a->stream(std::vector<Sse>{{"", "[DONE]", ""}});
  EXPECT_EQ(r.json(), Json::parse(R"([{"done": true}])"));
}

TEST_F(OpenAI, TurnsAnErrorEventIntoASinkError) {
  auto a = make();
  ASSERT_TRUE(a);
  auto r = a->stream(read_golden("openai/stream/error_event.sse"));
  // The sink is terminated by the error: the [DONE] after it is not read.
  EXPECT_TRUE(matches_golden(r.json(), "openai/stream/error_event.expected.json"));
}

// The status of a stream error is what classes it (retry, failover, return):
// a rate limit or an overload announced in the stream keeps its class.
TEST_F(OpenAI, AStreamErrorKeepsTheClassItsTypeOrCodeNames) {
  struct Case {
    const char* error;
    int status;
    const char* type;
  };
  for (const Case& c : {
           Case{R"({"type":"rate_limit_error","message":"slow down"})", 429, "rate_limit_error"},
           Case{R"({"type":"requests","code":"rate_limit_exceeded","message":"slow down"})", 429, "requests"},
           Case{R"({"type":"server_error","code":"overloaded","message":"busy"})", 503, "server_error"},
           Case{R"({"type":"invalid_request_error","code":"context_length_exceeded","message":"long"})", 400,
                "context_length_exceeded"},
           Case{R"({"type":"server_error","message":"oops"})", 502, "server_error"},
       }) {
    auto a = make();
    ASSERT_TRUE(a);
    auto r = a->stream(std::vector<Sse>{{"", std::string(R"({"error":)") + c.error + "}", ""}});
    ASSERT_EQ(r.events.size(), 1u) << c.error;
    EXPECT_EQ(r.events[0].kind, Kind::kError) << c.error;
    EXPECT_EQ(r.events[0].status, c.status) << c.error;
    EXPECT_EQ(r.events[0].type, c.type) << c.error;
  }
}

TEST_F(OpenAI, PassesThroughAChunkWhoseFinishReasonIsError) {
  // Some OpenAI-compatible routers end a choice with finish_reason "error":
  // the text mentions "error" but there is no error object.
  auto a = make();
  ASSERT_TRUE(a);
  std::string data = R"({"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"openai/gpt-4o",)"
                     R"("choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]})";
  auto r = a->stream(std::vector<Sse>{{"", data, ""}});
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].kind, Kind::kChunk);
  EXPECT_EQ(text(r.events[0]), data);
}

}  // namespace
}  // namespace ferry::adapter_test
