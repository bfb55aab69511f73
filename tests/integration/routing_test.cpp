// Routing strategies, measured on the answers: each in-process mock provider
// signs its replies ("from-a: ..."), so a test counts who answered.
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

// Providers a, b, c (mock, signed replies, extra options per provider) in
// pipeline "default" (model "m") with the given router.
std::string signed_pipeline(const std::string& router, const std::map<std::string, std::string>& options = {},
                            const std::string& names_list = "a,b,c") {
  std::string config = "[log]\naccess_log = false\n\n";
  std::string providers;
  std::string rest = names_list;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string name = rest.substr(0, comma);
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
    auto it = options.find(name);
    config += "[providers." + name + "]\nplugin = \"mock\"\nreply_prefix = \"from-" + name + ":\"\n" +
              (it == options.end() ? "" : it->second) + "\n";
    providers += (providers.empty() ? "\"" : ", \"") + name + "\"";
  }
  return config + "[pipelines.default]\nmodels = [\"m\"]\nproviders = [" + providers +
         "]\nrouter = " + router + "\n";
}

// Who answered: the signature before the colon, "" on failure.
std::string who(const HttpResponse& r) {
  if (r.status != 200) return "";
  std::string content = r.json()["choices"][0]["message"]["content"];
  return content.substr(5, content.find(':') - 5);
}

// Sends `total` requests from `threads` threads; counts answers per provider.
std::map<std::string, int> spread(const std::string& address, int total, int threads = 8,
                                  const std::function<HeaderList(int)>& headers = nullptr) {
  std::map<std::string, int> counts;
  std::mutex mu;
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (int i = next++; i < total; i = next++) {
        auto r = http_post(address, "/v1/chat/completions", chat_body("m", "x"),
                           headers ? headers(i) : HeaderList{});
        std::lock_guard lock(mu);
        ++counts[who(r)];
      }
    });
  for (auto& t : pool) t.join();
  return counts;
}

TEST(Routing, WeightedSplits70To20To10WithinTwoPercent) {
  auto f = Ferryd::start(signed_pipeline("{ plugin = \"weighted\", weights = { a = 70, b = 20, c = 10 } }"));
  const int n = 10'000;
  auto counts = spread(f->address(), n);
  EXPECT_EQ(counts[""], 0);
  EXPECT_NEAR(counts["a"] * 100.0 / n, 70, 2) << counts["a"];
  EXPECT_NEAR(counts["b"] * 100.0 / n, 20, 2) << counts["b"];
  EXPECT_NEAR(counts["c"] * 100.0 / n, 10, 2) << counts["c"];
}

TEST(Routing, WeightedFailsOverByWeightAndSkipsZeroWeights) {
  // a always fails: its requests move on, and c (weight 0) is never first.
  auto f = Ferryd::start(signed_pipeline("{ plugin = \"weighted\", weights = { a = 50, b = 50, c = 0 } }",
                                         {{"a", "error_status = 503"}}));
  auto counts = spread(f->address(), 400);
  EXPECT_EQ(counts[""], 0);
  EXPECT_EQ(counts["a"], 0);
  EXPECT_EQ(counts["c"], 0);
  EXPECT_EQ(counts["b"], 400);
}

TEST(Routing, WeightedRefusesWeightsThatDoNotMatchThePipeline) {
  auto r = ferryd_refusing(signed_pipeline("{ plugin = \"weighted\", weights = { a = 1, b = 1, z = 1 } }"));
  EXPECT_EQ(r.status, 2) << r.output;
  // Line 19 is the router line; the column points at z's weight.
  EXPECT_NE(
      r.output.find("ferry.toml:19:63: weights.z in the router of [pipelines.default]: 'z' is not a provider "
                    "of this pipeline"),
      std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("no weight for provider 'c'"), std::string::npos) << r.output;
}

TEST(Routing, RandomSpreadsEvenly) {
  auto f = Ferryd::start(signed_pipeline("\"random\""));
  auto counts = spread(f->address(), 3000);
  for (auto name : {"a", "b", "c"}) EXPECT_NEAR(counts[name], 1000, 150) << name;
}

TEST(Routing, LeastBusyAvoidsTheProviderThatHoldsRequests) {
  auto f = Ferryd::start(signed_pipeline("\"least-busy\"", {{"a", "latency_ms = 400"}}, "a,b"));
  std::map<std::string, int> counts;
  std::mutex mu;
  std::vector<std::thread> clients;
  for (int i = 0; i < 30; ++i) {
    clients.emplace_back([&] {
      auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
      std::lock_guard lock(mu);
      ++counts[who(r)];
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(counts[""], 0);
  // a is busy for 400 ms with the first request it gets; b answers at once.
  EXPECT_LE(counts["a"], 2);
  EXPECT_GE(counts["b"], 28);
}

TEST(Routing, LeastLatencyPrefersFastProvidersWithoutStampedingOne) {
  auto f = Ferryd::start(
      signed_pipeline("{ plugin = \"least-latency\", explore = 0 }", {{"a", "latency_ms = 30"}}));
  auto counts = spread(f->address(), 300, 1);
  EXPECT_EQ(counts[""], 0);
  // a is measured once or twice (unknown counts as fastest), then avoided.
  EXPECT_LE(counts["a"], 3);
  // Power of two choices keeps both fast providers busy.
  EXPECT_GE(counts["b"], 60);
  EXPECT_GE(counts["c"], 60);
  auto health = http_get(f->address(), "/health").json();
  EXPECT_GT(health["providers"][0]["ttfb_ewma_ms"].get<double>(), 20) << health.dump();
}

TEST(Routing, LeastLatencyMeasuresEachModelOnItsOwn) {
  // a is fast at "small" and slow at "big", b the other way round: averaged
  // over models they would look alike.
  auto f = Ferryd::start(R"(
[log]
access_log = false

[providers.a]
plugin = "mock"
reply_prefix = "from-a:"
model_latency_ms = { big = 30 }

[providers.b]
plugin = "mock"
reply_prefix = "from-b:"
model_latency_ms = { small = 30 }

[pipelines.default]
models = ["small", "big"]
providers = ["a", "b"]
router = { plugin = "least-latency", explore = 0 }
)");
  std::map<std::string, std::map<std::string, int>> counts;
  for (int i = 0; i < 40; ++i)
    for (const char* model : {"small", "big"})
      ++counts[model][who(http_post(f->address(), "/v1/chat/completions", chat_body(model, "x")))];
  // Each provider is measured once or twice per model, then avoided there.
  EXPECT_GE(counts["small"]["a"], 37) << "small went to b " << counts["small"]["b"] << " times";
  EXPECT_GE(counts["big"]["b"], 37) << "big went to a " << counts["big"]["a"] << " times";
  // /health shows each model's own figures, in the order the injected
  // latency makes (a relation between two measurements, not a threshold that a
  // loaded machine could cross): on a, big (30 ms added) is slower than small;
  // on b the other way round.
  auto providers = http_get(f->address(), "/health").json()["providers"];
  auto ttfb = [&](int provider, const char* model) {
    return providers[provider]["models"][model]["ttfb_ewma_ms"].get<double>();
  };
  EXPECT_GT(ttfb(0, "big"), ttfb(0, "small")) << providers.dump();
  EXPECT_GT(ttfb(1, "small"), ttfb(1, "big")) << providers.dump();
  // The 30 ms are a floor: a slow machine only adds to them.
  EXPECT_GT(ttfb(0, "big"), 20) << providers.dump();
}

TEST(Routing, AbKeepsEachUserOnOneVariant) {
  auto f = Ferryd::start(signed_pipeline("{ plugin = \"ab\", variants = { a = 50, b = 50 } }", {}, "a,b"));
  std::map<std::string, std::string> variant_of;
  int per_variant[2] = {0, 0};
  for (int user = 0; user < 200; ++user) {
    std::string id = "user-" + std::to_string(user);
    for (int k = 0; k < 3; ++k) {
      auto got =
          who(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"), {{"x-ferry-user", id}}));
      ASSERT_FALSE(got.empty());
      auto [it, fresh] = variant_of.emplace(id, got);
      EXPECT_EQ(it->second, got) << id << " moved between variants";
      if (fresh) ++per_variant[got == "a" ? 0 : 1];
    }
  }
  EXPECT_NEAR(per_variant[0], 100, 30);
  EXPECT_NEAR(per_variant[1], 100, 30);
  // The request's "user" field is the key when the header is absent.
  auto by_body = [&](const std::string& user) {
    return who(
        http_post(f->address(), "/v1/chat/completions", chat_body("m", "x", "\"user\":\"" + user + "\"")));
  };
  EXPECT_EQ(by_body("user-7"), variant_of["user-7"]);
}

}  // namespace
}  // namespace ferry::test

namespace ferry::test {
namespace {

TEST(ModelRouting, GlobPatternsServeModelFamiliesAndExactNamesWin) {
  auto f = Ferryd::start(R"(
[providers.family]
plugin = "mock"
reply_prefix = "family:"

[providers.special]
plugin = "mock"
reply_prefix = "special:"

[pipelines.claude]
models = ["claude-*", "anthropic/claude-?"]
providers = ["family"]

[pipelines.exact]
models = ["claude-special"]
providers = ["special"]
)");
  auto content = [&](const std::string& model) {
    auto r = http_post(f->address(), "/v1/chat/completions", chat_body(model, "x"));
    return r.status == 200 ? r.json()["choices"][0]["message"]["content"].get<std::string>()
                           : "status " + std::to_string(r.status);
  };
  EXPECT_EQ(content("claude-3-5-haiku"), "family: x");
  EXPECT_EQ(content("anthropic/claude-3"), "family: x");
  EXPECT_EQ(content("claude-special"), "special: x");
  EXPECT_EQ(content("gpt-4o"), "status 404");
  // Patterns are not model names: /v1/models lists the exact ones.
  auto models = http_get(f->address(), "/v1/models").json()["data"];
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0]["id"], "claude-special");
}

TEST(ModelRouting, AnAliasMapsToEachProvidersOwnModelName) {
  MockUpstream a, b;
  a.set_faults(R"({"status":503})");
  auto f = Ferryd::start(openai_provider("a", a, "models = { fast = \"mock-small\" }") +
                         openai_provider("b", b, "models = { fast = \"mock-large\" }") +
                         "[pipelines.default]\nmodels = [\"fast\", \"other\"]\nproviders = [\"a\", \"b\"]\n");
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("fast", "x"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(a.stats()["last_request"]["body"]["model"], "mock-small");
  EXPECT_EQ(b.stats()["last_request"]["body"]["model"], "mock-large");
  EXPECT_EQ(r.json()["model"], "mock-large");  // the upstream's own answer
  // A model a provider does not map goes out under the client's name.
  ASSERT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("other", "x")).status, 200);
  EXPECT_EQ(b.stats()["last_request"]["body"]["model"], "other");
}

}  // namespace
}  // namespace ferry::test

namespace ferry::test {
namespace {

std::string who_answered(Ferryd& f, const std::string& body, const HeaderList& headers = {}) {
  auto r = http_post(f.address(), "/v1/chat/completions", body, headers);
  if (r.status != 200) return "status " + std::to_string(r.status);
  std::string content = r.json()["choices"][0]["message"]["content"];
  return content.substr(0, content.find(':'));
}

TEST(CostRouting, PicksTheCheapestProviderOfTheRequestedTier) {
  auto f = Ferryd::start(R"(
[providers.premium]
plugin = "mock"
reply_prefix = "premium:"
attributes = { tier = "premium", price = { input = 2.5, output = 10.0 } }

[providers.mid]
plugin = "mock"
reply_prefix = "mid:"
attributes = { tier = "standard", price = { input = 0.5, output = 1.5 } }

[providers.cheap]
plugin = "mock"
reply_prefix = "cheap:"
attributes = { tier = "standard" }

[pipelines.default]
models = ["m"]
providers = ["premium", "mid", "cheap"]
router = { plugin = "cost", tier = "standard", prices = { cheap = { input = 0.05, output = 0.08 } } }
)");
  EXPECT_EQ(who_answered(*f, chat_body("m", "x")), "cheap");
  EXPECT_EQ(who_answered(*f, chat_body("m", "x"), {{"x-ferry-tier", "premium"}}), "premium");
  EXPECT_EQ(who_answered(*f, chat_body("m", "x"), {{"x-ferry-tier", "gold"}}), "status 503");
}

TEST(CostRouting, TheFallbackChainIsOrderedByCost) {
  auto f = Ferryd::start(R"(
[providers.pricey]
plugin = "mock"
reply_prefix = "pricey:"
attributes = { price = { input = 3, output = 15 } }

[providers.mid]
plugin = "mock"
reply_prefix = "mid:"
attributes = { price = { input = 1, output = 2 } }

[providers.cheap]
plugin = "mock"
error_status = 503
attributes = { price = { input = 0.1, output = 0.2 } }

[pipelines.default]
models = ["m"]
providers = ["pricey", "mid", "cheap"]
router = "cost"
)");
  EXPECT_EQ(who_answered(*f, chat_body("m", "x")), "mid");
}

TEST(ComplexityRouting, SendsSimpleRequestsToTheSmallModelAndHardOnesToTheLarge) {
  auto f = Ferryd::start(R"(
[providers.small]
plugin = "mock"
reply_prefix = "small:"

[providers.large]
plugin = "mock"
reply_prefix = "large:"

[pipelines.default]
models = ["m"]
providers = ["small", "large"]
router = { plugin = "complexity", routes = [ { max_score = 2, provider = "small" }, { provider = "large" } ] }
)");
  EXPECT_EQ(who_answered(*f, chat_body("m", "hello there")), "small");
  std::string hard = "Please analyze this code step by step:\n```\ndef f(x):\n    return x ** 2 + 3 * x\n```";
  EXPECT_EQ(who_answered(*f, chat_body("m", hard)), "large");
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", hard));
  EXPECT_FALSE(r.header("x-ferry-complexity").empty());
}

TEST(CapabilityRouting, SendsRequestsOnlyWhereTheyFit) {
  auto f = Ferryd::start(R"(
[providers.small]
plugin = "mock"
reply_prefix = "small:"
attributes = { capabilities = ["json_mode"], context_window = 64 }

[providers.vision]
plugin = "mock"
reply_prefix = "vision:"
attributes = { capabilities = ["vision", "json_mode"], context_window = 100000 }

[pipelines.default]
models = ["m"]
providers = ["small", "vision"]
router = "capability"
)");
  // Small first while it fits (max_tokens keeps the estimate small).
  EXPECT_EQ(who_answered(*f, chat_body("m", "hi", R"("max_tokens":8)")), "small");
  // An image needs vision.
  std::string image =
      R"({"model":"m","max_tokens":8,"messages":[{"role":"user","content":[{"type":"text","text":"what is this"},)"
      R"({"type":"image_url","image_url":{"url":"https://example.invalid/cat.png"}}]}]})";
  EXPECT_EQ(who_answered(*f, image), "vision");
  // Too long for small's 64-token window.
  EXPECT_EQ(who_answered(*f, chat_body("m", std::string(400, 'x'), R"("max_tokens":8)")), "vision");
  // Nobody declares tools: a precise 400.
  auto r = http_post(f->address(), "/v1/chat/completions",
                     chat_body("m", "x", R"("tools":[{"type":"function","function":{"name":"f"}}])"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "no_capable_provider");
  EXPECT_NE(error_message(r).find("needs: tools"), std::string::npos) << r.body;
}

}  // namespace
}  // namespace ferry::test
