// The rate-limit middleware through the real ferryd: limits per key, tokens
// corrected from real usage (streams included), queueing, and exact limits
// across two ferryd instances sharing a real redis-server.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

// Pipeline "default" (model "m", the in-process mock) with [middleware.limits].
std::string limited(const std::string& limits_block, const std::string& state_block = "") {
  return "[log]\naccess_log = false\n\n" + state_block + "\n[providers.mock]\nplugin = \"mock\"\n\n" +
         "[middleware.limits]\nplugin = \"rate-limit\"\n" + limits_block +
         "\n[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"mock\"]\nmiddleware = [\"limits\"]\n";
}

HeaderList key(const std::string& k) { return {{"authorization", "Bearer " + k}}; }

TEST(RateLimit, RefusesPastTheLimitWithRetryAfterAndKeepsKeysApart) {
  auto f = Ferryd::start(limited("limits = [{ per = \"key\", requests_per_minute = 3 }]\n"));
  for (int i = 0; i < 3; ++i) {
    auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"), key("alice"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-ratelimit-limit-requests"), "3");
    EXPECT_EQ(r.header("x-ratelimit-remaining-requests"), std::to_string(2 - i));
  }
  auto refused = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"), key("alice"));
  ASSERT_EQ(refused.status, 429) << refused.body;
  EXPECT_EQ(refused.json()["error"]["code"], "rate_limit_exceeded");
  EXPECT_NE(refused.json()["error"]["message"].get<std::string>().find("3 requests per 60 s"),
            std::string::npos)
      << refused.body;
  int retry_after = std::stoi(refused.header("retry-after"));
  EXPECT_GE(retry_after, 1);
  // The sliding window lets old requests fade out gradually: room may come
  // only some way into the next window, never later than two windows.
  EXPECT_LE(retry_after, 120);
  EXPECT_EQ(refused.header("x-ratelimit-remaining-requests"), "0");
  // A streaming client is refused the same way, before any event.
  auto stream = http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", "hi", R"("stream":true)"),
                              key("alice"));
  EXPECT_EQ(stream.status, 429) << stream.raw;
  // Another key has its own allowance.
  EXPECT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"), key("bob")).status, 200);
}

TEST(RateLimit, ChargesTokensFromRealUsageOfStreamedAnswers) {
  // The estimate (prompt + max_tokens 40) is ≈ 45 tokens; the mock really
  // uses ≈ 6. Without the correction the second request (45 + 45 > 60) could
  // never pass in this window.
  auto f = Ferryd::start(limited("limits = [{ per = \"key\", tokens_per_minute = 60 }]\n"));
  auto body = chat_body("m", "one two", R"("stream":true,"max_tokens":40)");
  auto first = http_post_sse(f->address(), "/v1/chat/completions", body, key("k"));
  ASSERT_EQ(first.status, 200) << first.raw;
  ASSERT_TRUE(first.ends_with_done());
  EXPECT_TRUE(eventually([&] {
    return http_post_sse(f->address(), "/v1/chat/completions", body, key("k")).status == 200;
  })) << "the stream's real usage was never charged instead of the estimate";
  // A request larger than the whole allowance is told so.
  auto huge =
      http_post(f->address(), "/v1/chat/completions", chat_body("m", "x", R"("max_tokens":500)"), key("k"));
  ASSERT_EQ(huge.status, 429);
  EXPECT_NE(huge.json()["error"]["message"].get<std::string>().find("this request alone needs"),
            std::string::npos)
      << huge.body;
}

TEST(RateLimit, QueueModeWaitsForRoomInsteadOfRefusing) {
  // 2 requests per second, token bucket: of 5 sent at once, 2 pass at once
  // and the others wait their turn (≈ 0.5 s apart).
  auto f =
      Ferryd::start(limited("algorithm = \"token-bucket\"\nwindow_ms = 1000\non_limit = \"queue\"\n"
                            "limits = [{ per = \"global\", requests_per_minute = 120 }]\n"));
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i)
    clients.emplace_back([&] {
      if (http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi")).status == 200) ++ok;
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 5);
  // Three had to wait for refills: the last one ≈ 1.5 s.
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1200));
}

// Providers a then b (priority), each signing its answers.
std::string two_providers(const std::string& limits) {
  return "[log]\nlevel = \"info\"\n\n[providers.a]\nplugin = \"mock\"\nreply_prefix = \"from-a:\"\n\n"
         "[providers.b]\nplugin = \"mock\"\nreply_prefix = \"from-b:\"\n\n"
         "[middleware.limits]\nplugin = \"rate-limit\"\nlimits = " +
         limits +
         "\n\n[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\", \"b\"]\nmiddleware = [\"limits\"]\n";
}

std::string answered_by(const HttpResponse& r) {
  if (r.status != 200) return std::to_string(r.status);
  std::string content = r.json()["choices"][0]["message"]["content"];
  return content.substr(0, content.find(':'));
}

TEST(RateLimit, AProviderOverItsLimitIsSkippedForTheNext) {
  auto f =
      Ferryd::start(two_providers("[{ per = \"provider\", provider = \"a\", requests_per_minute = 2 }]"));
  std::vector<std::string> who;
  for (int i = 0; i < 4; ++i)
    who.push_back(answered_by(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"))));
  EXPECT_EQ(who, (std::vector<std::string>{"from-a", "from-a", "from-b", "from-b"}));
  // Skipping is not a failure of a: its circuit stays closed.
  EXPECT_EQ(http_get(f->address(), "/health").json()["providers"][0]["healthy"], true);
}

TEST(RateLimit, EveryProviderOverItsLimitIsA429WithRetryAfter) {
  auto f = Ferryd::start(two_providers("[{ per = \"provider\", requests_per_minute = 1 }]"));
  EXPECT_EQ(answered_by(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"))), "from-a");
  EXPECT_EQ(answered_by(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"))), "from-b");
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  ASSERT_EQ(r.status, 429) << r.body;
  EXPECT_NE(
      r.body.find("provider 'a': skipped by middleware 'limits': over its limit of 1 requests per 60 s"),
      std::string::npos)
      << r.body;
  EXPECT_FALSE(r.header("retry-after").empty());
}

TEST(RateLimit, RejectsAnUnknownScopeAtItsTomlPosition) {
  auto r = ferryd_refusing(limited("limits = [{ per = \"planet\", requests_per_minute = 1 }]\n"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("must be one of global, key, user, team, model, provider; not \"planet\""),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("ferry.toml:"), std::string::npos) << r.output;
}

// Sends `total` requests from 16 threads, alternating between the addresses.
std::map<int, int> hammer(const std::vector<std::string>& addresses, int total, const HeaderList& headers) {
  std::map<int, int> statuses;
  std::mutex mu;
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t)
    threads.emplace_back([&] {
      for (int i = next++; i < total; i = next++) {
        auto r =
            http_post(addresses[i % addresses.size()], "/v1/chat/completions", chat_body("m", "hi"), headers);
        std::lock_guard lock(mu);
        ++statuses[r.status];
      }
    });
  for (auto& t : threads) t.join();
  return statuses;
}

TEST(RateLimitRedis, TwoInstancesAdmitExactlyTheLimitTogether) {
  RedisServer redis;
  // A generous command timeout: a busy CI machine must not make Redis look
  // down (that path has its own test).
  std::string state =
      "[state]\nbackend = \"redis\"\nurl = \"" + redis.url() + "\"\ncommand_timeout_ms = 5000\n";
  auto config = limited("limits = [{ per = \"key\", requests_per_minute = 50 }]\n", state);
  auto a = Ferryd::start(config);
  auto b = Ferryd::start(config);
  auto statuses = hammer({a->address(), b->address()}, 300, key("shared"));
  EXPECT_EQ(statuses[200], 50) << "admitted across both instances";
  EXPECT_EQ(statuses[429], 250);
  // The counter lives in Redis, under the plugin's namespace.
  EXPECT_NE(redis.cli({"--scan", "--pattern", "ferry:rate-limit.limits:key:*"}).find("rpm"),
            std::string::npos);
}

// The token bucket's state on Redis, "<tokens> <last refill ms>", of the one
// key matching pattern.
double bucket_tokens(const RedisServer& redis, const std::string& pattern) {
  std::string keys = redis.cli({"--scan", "--pattern", pattern});
  std::string key = keys.substr(0, keys.find('\n'));
  std::string value = redis.cli({"GET", key});
  EXPECT_EQ(std::count(value.begin(), value.end(), ' '), 1) << key << " = " << value;
  return std::stod(value);
}

TEST(RateLimitRedis, TwoInstancesShareOneTokenBucketExactly) {
  RedisServer redis;
  std::string state =
      "[state]\nbackend = \"redis\"\nurl = \"" + redis.url() + "\"\ncommand_timeout_ms = 5000\n";
  // A bucket of 50 (0.5 per minute over a 100-minute window) that refills one
  // token every two minutes: nothing comes back while the test runs, so
  // exactly 50 may pass, whichever instance they reach.
  auto config = limited(
      "algorithm = \"token-bucket\"\nwindow_ms = 6000000\nlimits = [{ per = \"key\", requests_per_minute = "
      "0.5 }]\n",
      state);
  auto a = Ferryd::start(config);
  auto b = Ferryd::start(config);
  auto statuses = hammer({a->address(), b->address()}, 300, key("shared"));
  EXPECT_EQ(statuses[200], 50) << "admitted across both instances";
  EXPECT_EQ(statuses[429], 250);
  // One bucket in Redis (tokens and time), not a window, and it is empty.
  EXPECT_LT(bucket_tokens(redis, "ferry:rate-limit.limits:key:*"), 1.0);
  auto refused = http_post(b->address(), "/v1/chat/completions", chat_body("m", "hi"), key("shared"));
  ASSERT_EQ(refused.status, 429) << refused.body;
  // The next token is due within one refill interval (two minutes).
  int retry_after = std::stoi(refused.header("retry-after"));
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 120);
}

TEST(RateLimitRedis, ADrainedTokenBucketRefillsAtItsRateOnEveryInstance) {
  RedisServer redis;
  std::string state =
      "[state]\nbackend = \"redis\"\nurl = \"" + redis.url() + "\"\ncommand_timeout_ms = 5000\n";
  // 5 tokens (60 per minute over 5 s), one more every second.
  auto config = limited(
      "algorithm = \"token-bucket\"\nwindow_ms = 5000\nlimits = [{ per = \"key\", requests_per_minute = 60 "
      "}]\n",
      state);
  auto a = Ferryd::start(config);
  auto b = Ferryd::start(config);
  auto post = [&](const Ferryd& f) {
    return http_post(f.address(), "/v1/chat/completions", chat_body("m", "hi"), key("k"));
  };
  for (int i = 0; i < 5; ++i) ASSERT_EQ(post(i % 2 ? *b : *a).status, 200) << i;
  auto drained = post(*a);
  ASSERT_EQ(drained.status, 429) << drained.body;
  EXPECT_EQ(post(*b).status, 429) << "the bucket is shared";
  // One token takes a second to come back; the answer says when.
  int retry_ms = std::stoi(drained.header("retry-after-ms"));
  EXPECT_GT(retry_ms, 0);
  EXPECT_LE(retry_ms, 1000);
  EXPECT_EQ(drained.header("retry-after"), "1");

  // Refused requests take nothing, so polling does not delay the refill.
  EXPECT_TRUE(eventually([&] { return post(*b).status == 200; }, std::chrono::seconds(10)))
      << "the bucket never refilled";
  // It refills at its rate, one token per second, not all at once: the token
  // that came back is gone again.
  auto after = post(*a);
  EXPECT_EQ(after.status, 429) << after.body;
  EXPECT_TRUE(eventually([&] { return post(*a).status == 200; }, std::chrono::seconds(10)))
      << "the bucket stopped refilling after the first token";
}

TEST(RateLimitRedis, FollowsItsPolicyWhileRedisIsDownAndRecovers) {
  RedisServer redis;
  std::string state = "[state]\nbackend = \"redis\"\nurl = \"" + redis.url() + "\"\n";
  auto open = Ferryd::start(limited("limits = [{ per = \"key\", requests_per_minute = 1000 }]\n", state));
  auto closed = Ferryd::start(limited(
      "on_unavailable = \"closed\"\nlimits = [{ per = \"key\", requests_per_minute = 1000 }]\n", state));
  auto post = [&](const Ferryd& f) {
    return http_post(f.address(), "/v1/chat/completions", chat_body("m", "hi"), key("k")).status;
  };
  EXPECT_EQ(post(*open), 200);
  EXPECT_EQ(post(*closed), 200);

  redis.kill();
  // The first request after the loss may be the one that finds out.
  EXPECT_TRUE(eventually([&] { return post(*closed) == 503; }));
  EXPECT_EQ(post(*open), 200) << "fail open admits";
  EXPECT_EQ(http_get(closed->address(), "/health").json()["state"]["available"], false);
  EXPECT_TRUE(open->log_line("redis at 127.0.0.1:" + std::to_string(redis.port()) + " is unreachable"));

  redis.restart();
  EXPECT_TRUE(eventually([&] { return post(*closed) == 200; }, std::chrono::seconds(10)))
      << "did not reconnect by itself";
  EXPECT_TRUE(closed->log_line("state: connected to redis"));
  EXPECT_EQ(http_get(closed->address(), "/health").json()["state"]["available"], true);
}

}  // namespace
}  // namespace ferry::test
