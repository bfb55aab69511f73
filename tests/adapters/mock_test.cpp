// The mock provider: answers by itself (serve), deterministically, with
// optional latency and injected failures.
#include <gtest/gtest.h>

#include "adapter_harness.h"

namespace ferry::adapter_test {
namespace {

using Kind = pipeline::SinkEvent::Kind;

std::unique_ptr<Adapter> make(const Json& options = Json::object()) {
  auto created = create_adapter("mock", options);
  EXPECT_TRUE(created.adapter) << created.messages();
  return std::move(created.adapter);
}

Json request(const std::string& name) { return golden("mock/" + name + ".request.json"); }

// The events_json() of a single sink error.
Json error_events(int status, const std::string& type, const std::string& message) {
  return Json::array({{{"error", {{"status", status}, {"type", type}, {"message", message}}}}});
}

// The text of a streamed answer: its content deltas, concatenated.
std::string streamed_text(const Result& r) {
  std::string out;
  for (const auto* c : r.of(Kind::kChunk)) {
    Json choices = Json::parse(text(*c))["choices"];
    if (choices.empty()) continue;
    const Json& delta = choices[0]["delta"];
    if (delta.contains("content")) out += delta["content"].get<std::string>();
  }
  return out;
}

TEST(Mock, IsAServingProviderWithoutHttpHooks) {
  auto a = make();
  ASSERT_TRUE(a);
  EXPECT_NE(a->vt().serve, nullptr);
  EXPECT_EQ(a->vt().build_request, nullptr);
  EXPECT_EQ(a->vt().parse_response, nullptr);
}

TEST(Mock, AnswersWithThePrefixAndTheLastUserMessage) {
  auto a = make();
  ASSERT_TRUE(a);
  auto r = a->serve(request("chat"));
  EXPECT_EQ(r.status, FERRY_OK);
  EXPECT_TRUE(matches_golden(without_volatile(r.json()), "mock/chat.expected.json"));
}

TEST(Mock, DeliversEverythingSynchronouslyWithoutLatency) {
  auto a = make();
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->serve(request("chat")).synchronous);
  EXPECT_TRUE(a->serve(request("stream")).synchronous);
}

TEST(Mock, StreamsOneChunkPerWordBetweenARoleChunkAndAFinishChunk) {
  auto a = make();
  ASSERT_TRUE(a);
  auto r = a->serve(request("stream"));
  EXPECT_EQ(r.status, FERRY_OK);
  EXPECT_TRUE(matches_golden(without_volatile(r.json()), "mock/stream.expected.json"));
}

TEST(Mock, StreamChunksConcatenateToTheNonStreamedText) {
  auto a = make();
  ASSERT_TRUE(a);
  auto whole = a->serve(request("chat"));
  auto streamed = a->serve(request("stream"));
  ASSERT_EQ(whole.of(Kind::kResponse).size(), 1u);
  std::string content = Json::parse(text(*whole.of(Kind::kResponse)[0]))["choices"][0]["message"]["content"];
  EXPECT_EQ(streamed_text(streamed), content);
  ASSERT_FALSE(streamed.events.empty());
  EXPECT_EQ(streamed.events.back().kind, Kind::kDone);
}

TEST(Mock, SendsAUsageChunkOnlyWhenStreamOptionsIncludeUsage) {
  auto with = make();
  ASSERT_TRUE(with);
  auto r = with->serve(request("stream_usage"));
  EXPECT_TRUE(matches_golden(without_volatile(r.json()), "mock/stream_usage.expected.json"));

  auto without = make();
  ASSERT_TRUE(without);
  auto plain = without->serve(request("stream"));
  EXPECT_EQ(plain.of(Kind::kChunk).size(), 9u);  // role, 7 words, finish
  for (const auto* c : plain.of(Kind::kChunk))
    EXPECT_FALSE(Json::parse(text(*c)).contains("usage")) << text(*c);
}

TEST(Mock, TruncatesAtMaxTokensWithFinishReasonLength) {
  auto a = make();
  ASSERT_TRUE(a);
  Json req = request("chat");
  req["max_tokens"] = 3;
  auto r = a->serve(req);
  ASSERT_EQ(r.events.size(), 1u);
  Json completion = Json::parse(text(r.events[0]));
  EXPECT_EQ(completion["choices"][0]["message"]["content"], "Ferry mock reply:");
  EXPECT_EQ(completion["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(completion["usage"]["completion_tokens"], 3);

  req["stream"] = true;
  auto s = a->serve(req);
  EXPECT_EQ(streamed_text(s), "Ferry mock reply:");
  auto chunks = s.of(Kind::kChunk);
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(Json::parse(text(*chunks.back()))["choices"][0]["finish_reason"], "length");
}

TEST(Mock, HonoursMaxCompletionTokensToo) {
  auto a = make();
  ASSERT_TRUE(a);
  Json req = request("chat");
  req["max_completion_tokens"] = 2;
  Json completion = Json::parse(text(a->serve(req).events.at(0)));
  EXPECT_EQ(completion["choices"][0]["message"]["content"], "Ferry mock");
  EXPECT_EQ(completion["choices"][0]["finish_reason"], "length");
}

TEST(Mock, PrefersMaxCompletionTokensOverMaxTokens) {
  // As the anthropic adapter does: max_tokens is the deprecated spelling.
  auto a = make();
  ASSERT_TRUE(a);
  Json req = request("chat");
  req["max_tokens"] = 5;
  req["max_completion_tokens"] = 2;
  Json completion = Json::parse(text(a->serve(req).events.at(0)));
  EXPECT_EQ(completion["choices"][0]["message"]["content"], "Ferry mock");
  EXPECT_EQ(completion["usage"]["completion_tokens"], 2);
}

TEST(Mock, DoesNotTruncateWhenMaxTokensCoversTheAnswer) {
  auto a = make();
  ASSERT_TRUE(a);
  Json req = request("chat");
  req["max_tokens"] = 7;
  Json completion = Json::parse(text(a->serve(req).events.at(0)));
  EXPECT_EQ(completion["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(completion["choices"][0]["message"]["content"], "Ferry mock reply: Tell me about ferries");
}

TEST(Mock, UsesTheConfiguredReplyPrefix) {
  auto a = make({{"reply_prefix", "echo:"}});
  ASSERT_TRUE(a);
  Json completion = Json::parse(text(a->serve(request("chat")).events.at(0)));
  EXPECT_EQ(completion["choices"][0]["message"]["content"], "echo: Tell me about ferries");
}

TEST(Mock, GivesEveryRequestItsOwnId) {
  auto a = make();
  ASSERT_TRUE(a);
  Json first = Json::parse(text(a->serve(request("chat")).events.at(0)));
  Json second = Json::parse(text(a->serve(request("chat")).events.at(0)));
  EXPECT_EQ(first["id"], "chatcmpl-mock-0");
  EXPECT_EQ(second["id"], "chatcmpl-mock-1");
}

TEST(Mock, DeliversThroughTheHostTimerWhenLatencyIsConfigured) {
  auto a = make({{"latency_ms", 5}});
  ASSERT_TRUE(a);
  auto start = std::chrono::steady_clock::now();
  auto r = a->serve(request("chat"));
  EXPECT_FALSE(r.synchronous);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(5));
  EXPECT_TRUE(matches_golden(without_volatile(r.json()), "mock/chat.expected.json"));
}

TEST(Mock, PacesAStreamWithTokensPerSecond) {
  auto a = make({{"tokens_per_second", 1000}});
  ASSERT_TRUE(a);
  auto r = a->serve(request("stream"));
  EXPECT_FALSE(r.synchronous);
  EXPECT_TRUE(matches_golden(without_volatile(r.json()), "mock/stream.expected.json"));
}

TEST(Mock, FailsEveryOtherRequestAtErrorRateOneHalf) {
  auto a = make({{"error_status", 503}, {"error_rate", 0.5}});
  ASSERT_TRUE(a);
  std::string pattern;
  for (int i = 0; i < 8; ++i) {
    auto r = a->serve(request("chat"));
    ASSERT_EQ(r.events.size(), 1u);
    pattern += r.events[0].kind == Kind::kError ? 'E' : '.';
  }
  EXPECT_EQ(pattern, ".E.E.E.E");
}

TEST(Mock, FailsOneRequestInFourAtErrorRateOneQuarter) {
  auto a = make({{"error_status", 500}, {"error_rate", 0.25}});
  ASSERT_TRUE(a);
  std::string pattern;
  for (int i = 0; i < 8; ++i)
    pattern += a->serve(request("chat")).events.at(0).kind == Kind::kError ? 'E' : '.';
  EXPECT_EQ(pattern, "...E...E");
}

TEST(Mock, FailsEveryRequestWhenOnlyErrorStatusIsSet) {
  auto a = make({{"error_status", 503}});
  ASSERT_TRUE(a);
  for (const char* name : {"chat", "stream"}) {
    auto r = a->serve(request(name));
    EXPECT_EQ(r.json(), error_events(503, "server_error", "injected failure (mock error_status 503)"))
        << name;
  }
}

TEST(Mock, InjectsRateLimitErrorsWithTheConfiguredMessage) {
  auto a = make({{"error_status", 429}, {"error_message", "slow down"}});
  ASSERT_TRUE(a);
  auto r = a->serve(request("chat"));
  EXPECT_EQ(r.json(), error_events(429, "rate_limit_error", "slow down (mock error_status 429)"));
}

}  // namespace
}  // namespace ferry::adapter_test
