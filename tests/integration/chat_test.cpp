// The OpenAI-compatible endpoints with the in-process mock provider.
#include <chrono>
#include <thread>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

TEST(Chat, AnswersInTheOpenAIFormat) {
  auto f = Ferryd::start(mock_pipeline());
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hello there"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  auto j = r.json();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "m");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Ferry mock reply: hello there");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 2);
  EXPECT_EQ(j["usage"]["completion_tokens"], 5);
  EXPECT_EQ(j["usage"]["total_tokens"], 7);
}

TEST(Chat, StreamedTextConcatenatesToTheNonStreamedText) {
  auto f = Ferryd::start(mock_pipeline());
  std::string text = "streams and plain answers must say the same thing";
  auto plain = http_post(f->address(), "/v1/chat/completions", chat_body("m", text));
  auto s = http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", text, R"("stream":true)"));
  ASSERT_EQ(s.status, 200) << s.raw;
  EXPECT_EQ(s.header("content-type"), "text/event-stream");
  ASSERT_TRUE(s.ends_with_done()) << s.raw;
  EXPECT_EQ(s.content(), plain.json()["choices"][0]["message"]["content"]);
  auto chunks = s.chunks();
  ASSERT_GE(chunks.size(), 3u);
  EXPECT_EQ(chunks.front()["object"], "chat.completion.chunk");
  EXPECT_EQ(chunks.front()["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(chunks.back()["choices"][0]["finish_reason"], "stop");
}

TEST(Chat, SendsTheUsageChunkOnlyWhenTheClientAsks) {
  auto f = Ferryd::start(mock_pipeline());
  auto without =
      http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", "count me", R"("stream":true)"));
  for (const auto& c : without.chunks())
    EXPECT_FALSE(c.contains("usage") && c["usage"].is_object()) << c.dump();

  auto with =
      http_post_sse(f->address(), "/v1/chat/completions",
                    chat_body("m", "count me", R"("stream":true,"stream_options":{"include_usage":true})"));
  auto chunks = with.chunks();
  ASSERT_FALSE(chunks.empty());
  EXPECT_TRUE(chunks.back()["choices"].empty()) << chunks.back().dump();
  EXPECT_EQ(chunks.back()["usage"]["prompt_tokens"], 2);
  EXPECT_EQ(chunks.back()["usage"]["completion_tokens"], 5);
  EXPECT_TRUE(with.ends_with_done());

  // Either way the host counted the tokens for its access log.
  auto line = f->log_line("access request_id=");
  ASSERT_TRUE(line);
  EXPECT_NE(line->find("tokens_in=2 tokens_out=5"), std::string::npos) << *line;
}

TEST(Chat, ForwardsChunksAsTheyArriveInsteadOfBufferingTheAnswer) {
  // 10 tokens per second: the answer takes about a second to produce.
  auto f = Ferryd::start(mock_pipeline("tokens_per_second = 10"));
  std::vector<std::chrono::steady_clock::time_point> arrivals;
  auto s = http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("m", "one two three four five six", R"("stream":true)"), {},
                         [&](std::string_view) {
                           arrivals.push_back(std::chrono::steady_clock::now());
                           return true;
                         });
  ASSERT_TRUE(s.ends_with_done()) << s.raw;
  ASSERT_GE(arrivals.size(), 5u) << "the answer came in " << arrivals.size() << " pieces";
  // Buffering would deliver everything at once at the end.
  EXPECT_GT(arrivals.back() - arrivals.front(), std::chrono::milliseconds(500));
}

TEST(Chat, ListsEveryServedModel) {
  auto f = Ferryd::start(mock_pipeline() + R"(
[pipelines.second]
models = ["m2", "m3"]
providers = ["mock"]
)");
  auto r = http_get(f->address(), "/v1/models");
  ASSERT_EQ(r.status, 200);
  auto j = r.json();
  EXPECT_EQ(j["object"], "list");
  std::vector<std::string> ids;
  for (const auto& m : j["data"]) {
    EXPECT_EQ(m["object"], "model");
    ids.push_back(m["id"]);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"m", "m2", "m3"}));
}

TEST(Chat, HealthReportsVersionUptimeAndProviders) {
  auto f = Ferryd::start(mock_pipeline());
  auto j = http_get(f->address(), "/health").json();
  EXPECT_EQ(j["status"], "ok");
  EXPECT_TRUE(j["version"].is_string());
  EXPECT_TRUE(j["uptime_s"].is_number());
  ASSERT_EQ(j["providers"].size(), 1u);
  EXPECT_EQ(j["providers"][0]["name"], "mock");
  EXPECT_EQ(j["providers"][0]["plugin"], "mock");
  EXPECT_EQ(j["providers"][0]["healthy"], true);
}

TEST(Chat, KeepsServingAfterModelHealthAndMetricsRequests) {
  // Regression: a g++ 12 coroutine bug once made the second of these crash.
  auto f = Ferryd::start(mock_pipeline());
  for (int i = 0; i < 3; ++i)
    for (auto path : {"/v1/models", "/health", "/metrics"})
      ASSERT_EQ(http_get(f->address(), path).status, 200) << path;
  EXPECT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 200);
  EXPECT_EQ(f->stop(), 0) << f->output();
}

TEST(Chat, EchoesTheClientsRequestIdAndLogsIt) {
  auto f = Ferryd::start(mock_pipeline());
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"),
                     {{"x-request-id", "client-id-42"}});
  EXPECT_EQ(r.header("x-request-id"), "client-id-42");
  auto line = f->log_line("access request_id=client-id-42 ");
  ASSERT_TRUE(line) << f->output();
  EXPECT_NE(line->find("status=200"), std::string::npos);
}

TEST(Chat, GeneratesARequestIdWhenTheClientSendsNoneOrAnUnsafeOne) {
  auto f = Ferryd::start(mock_pipeline());
  auto a = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"));
  auto b = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"),
                     {{"x-request-id", "bad id\twith tab"}});
  auto err = http_post(f->address(), "/v1/chat/completions", "{");
  for (const auto* r : {&a, &b, &err}) {
    auto id = r->header("x-request-id");
    EXPECT_EQ(id.size(), 32u) << id;
    EXPECT_TRUE(f->log_line("request_id=" + id)) << "id " << id << " not in the log";
  }
  EXPECT_NE(a.header("x-request-id"), b.header("x-request-id"));
}

TEST(Chat, ServesConcurrentStreamsIndependently) {
  auto f = Ferryd::start(mock_pipeline("tokens_per_second = 200"));
  std::vector<std::thread> threads;
  std::vector<std::string> contents(16);
  for (size_t i = 0; i < contents.size(); ++i) {
    threads.emplace_back([&, i] {
      auto s = http_post_sse(f->address(), "/v1/chat/completions",
                             chat_body("m", "client " + std::to_string(i), R"("stream":true)"));
      if (s.ends_with_done()) contents[i] = s.content();
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < contents.size(); ++i)
    EXPECT_EQ(contents[i], "Ferry mock reply: client " + std::to_string(i));
}

}  // namespace
}  // namespace ferry::test
