// The cache middleware through the real ferryd, in front of the project's
// mock upstream (which counts what reaches it): hits skip the upstream, a
// streamed answer is stored and replayed as a stream or as JSON, no-cache
// bypasses, entries expire and are evicted, and two instances share entries
// through a real Redis.
#include <thread>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

std::string cached(const MockUpstream& up, const std::string& cache_options,
                   const std::string& state_block = "") {
  return "[log]\nlevel = \"info\"\n\n" + state_block + "\n" + openai_provider("up", up) +
         "[middleware.cache]\nplugin = \"cache\"\n" + cache_options +
         "\n[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"up\"]\nmiddleware = [\"cache\"]\n";
}

HttpResponse ask(const Ferryd& f, const std::string& text, const std::string& extra = "",
                 const HeaderList& headers = {}) {
  return http_post(f.address(), "/v1/chat/completions", chat_body("m", text, extra), headers);
}

std::string content(const HttpResponse& r) { return r.json()["choices"][0]["message"]["content"]; }

TEST(Cache, AnIdenticalRequestIsAnsweredWithoutTheUpstream) {
  MockUpstream up;
  auto f = Ferryd::start(cached(up, ""));
  auto first = ask(*f, "what is ferry", R"("temperature":0)");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.header("x-ferry-cache"), "miss");
  auto second = ask(*f, "what is ferry", R"("temperature":0,"user":"someone-else","stream":false)");
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(second.header("x-ferry-cache"), "hit") << "user and stream do not change the answer";
  EXPECT_EQ(content(second), content(first));
  EXPECT_EQ(up.requests(), 1);
  // A parameter that changes the answer is another entry.
  EXPECT_EQ(ask(*f, "what is ferry", R"("temperature":0.7)").header("x-ferry-cache"), "miss");
  EXPECT_EQ(up.requests(), 2);
}

TEST(Cache, AStreamedAnswerIsStoredAndReplayedAsAStreamOrAsJson) {
  MockUpstream up;
  auto f = Ferryd::start(cached(up, ""));
  auto body = chat_body("m", "tell me a story", R"("stream":true)");
  auto first = http_post_sse(f->address(), "/v1/chat/completions", body, {{"x-request-id", "first"}});
  ASSERT_TRUE(first.ends_with_done()) << first.raw;
  EXPECT_EQ(first.header("x-ferry-cache"), "miss");
  ASSERT_EQ(up.requests(), 1);
  // A stream is stored in on_complete, after its last byte; the access log
  // line follows on_complete.
  ASSERT_TRUE(f->log_line("request_id=first "));

  auto replay = http_post_sse(f->address(), "/v1/chat/completions", body);
  EXPECT_EQ(replay.header("x-ferry-cache"), "hit");
  ASSERT_TRUE(replay.ends_with_done()) << replay.raw;
  EXPECT_EQ(replay.content(), first.content());
  EXPECT_EQ(replay.chunks().back()["choices"][0]["finish_reason"], "stop");

  auto whole = ask(*f, "tell me a story");
  EXPECT_EQ(whole.header("x-ferry-cache"), "hit");
  EXPECT_EQ(content(whole), first.content());
  EXPECT_EQ(up.requests(), 1);
}

TEST(Cache, AStreamCutOffMidwayIsNeverStored) {
  MockUpstream up;
  auto f = Ferryd::start(cached(up, ""));
  up.set_faults(R"({"reset_after":2,"count":1})");
  auto cut =
      http_post_sse(f->address(), "/v1/chat/completions",
                    chat_body("m", "one two three four", R"("stream":true)"), {{"x-request-id", "cut"}});
  ASSERT_NE(cut.raw.find("stream_interrupted"), std::string::npos) << cut.raw;
  ASSERT_TRUE(f->log_line("request_id=cut "));
  EXPECT_EQ(ask(*f, "one two three four").header("x-ferry-cache"), "miss");
}

TEST(Cache, NoCacheBypassesAndNoStoreKeepsNothing) {
  MockUpstream up;
  auto f = Ferryd::start(cached(up, ""));
  ask(*f, "hello");
  EXPECT_EQ(ask(*f, "hello", "", {{"cache-control", "no-cache"}}).header("x-ferry-cache"), "bypass");
  EXPECT_EQ(up.requests(), 2);
  EXPECT_EQ(ask(*f, "fresh", "", {{"cache-control", "no-store"}}).header("x-ferry-cache"), "bypass");
  EXPECT_EQ(ask(*f, "fresh").header("x-ferry-cache"), "miss");
}

TEST(Cache, EntriesExpireAndTheOldestAreEvicted) {
  MockUpstream up;
  auto f = Ferryd::start(cached(up, "ttl_s = 1\nmax_entries = 2\n"));
  ask(*f, "a");
  ask(*f, "b");
  ask(*f, "c");  // evicts a, the least recently used
  EXPECT_EQ(ask(*f, "c").header("x-ferry-cache"), "hit");
  EXPECT_EQ(ask(*f, "a").header("x-ferry-cache"), "miss");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(ask(*f, "c").header("x-ferry-cache"), "miss") << "past its ttl";
}

TEST(Cache, EmbeddingsAreKeyedOnTheirInput) {
  MockUpstream up;
  auto f = Ferryd::start(cached(up, ""));
  auto embed = [&](const std::string& input) {
    return http_post(f->address(), "/v1/embeddings", R"({"model":"m","input":")" + input + "\"}");
  };
  auto a = embed("alpha");
  auto b = embed("beta");
  EXPECT_EQ(a.header("x-ferry-cache"), "miss");
  EXPECT_EQ(b.header("x-ferry-cache"), "miss") << "another input is another entry";
  auto again = embed("alpha");
  EXPECT_EQ(again.header("x-ferry-cache"), "hit");
  EXPECT_EQ(again.json()["data"], a.json()["data"]);
  EXPECT_NE(a.json()["data"], b.json()["data"]);
  EXPECT_EQ(up.requests(), 2);
}

// The in-process mock answers chat and embeddings; its vectors are bags of
// hashed words, so the same question in other case and punctuation is near.
std::string semantic(const std::string& embed_model, const std::string& threshold = "0.95") {
  return "[log]\nlevel = \"info\"\n\n[providers.mock]\nplugin = \"mock\"\n\n"
         "[middleware.cache]\nplugin = \"cache\"\nsemantic = { model = \"" +
         embed_model + "\", threshold = " + threshold +
         " }\n\n[pipelines.chat]\nmodels = [\"m\"]\nproviders = [\"mock\"]\nmiddleware = [\"cache\"]\n\n"
         "[pipelines.embed]\nmodels = [\"embedder\"]\nproviders = [\"mock\"]\n";
}

TEST(SemanticCache, AnswersAQuestionAskedInOtherWordsFromTheCache) {
  auto f = Ferryd::start(semantic("embedder"));
  auto first =
      http_post(f->address(), "/v1/chat/completions", chat_body("m", "What is the capital of France?"));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.header("x-ferry-cache"), "miss");
  auto near =
      http_post(f->address(), "/v1/chat/completions", chat_body("m", "what is the capital of france"));
  EXPECT_EQ(near.header("x-ferry-cache"), "hit");
  EXPECT_NE(near.header("x-ferry-cache-match").find("semantic; similarity="), std::string::npos);
  // The mock echoes its prompt: this is the first question's answer, not a new one.
  EXPECT_EQ(near.json()["choices"][0]["message"]["content"],
            "Ferry mock reply: What is the capital of France?");
  // Streaming clients get it as a stream.
  auto streamed = http_post_sse(f->address(), "/v1/chat/completions",
                                chat_body("m", "WHAT is the capital of France", R"("stream":true)"));
  EXPECT_EQ(streamed.header("x-ferry-cache"), "hit");
  EXPECT_EQ(streamed.content(), "Ferry mock reply: What is the capital of France?");
  // Another question is another answer.
  auto other =
      http_post(f->address(), "/v1/chat/completions", chat_body("m", "How do I bake sourdough bread?"));
  EXPECT_EQ(other.header("x-ferry-cache"), "miss");
  EXPECT_EQ(other.json()["choices"][0]["message"]["content"],
            "Ferry mock reply: How do I bake sourdough bread?");
  // A different temperature is another scope: no semantic match across it.
  EXPECT_EQ(http_post(f->address(), "/v1/chat/completions",
                      chat_body("m", "what is the capital of france", R"("temperature":1.5)"))
                .header("x-ferry-cache"),
            "miss");
}

TEST(SemanticCache, AnEmbeddingThatFailsIsJustAMiss) {
  auto f = Ferryd::start(semantic("no-such-embedder"));
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hello"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-ferry-cache"), "miss");
  EXPECT_TRUE(f->log_line("embeddings from 'no-such-embedder' failed (HTTP 404)"));
}

TEST(CacheRedis, InstancesShareWhatAnyOfThemStored) {
  MockUpstream up;
  RedisServer redis;
  auto config =
      cached(up, "shared = true\n", "[state]\nbackend = \"redis\"\nurl = \"" + redis.url() + "\"\n");
  auto a = Ferryd::start(config);
  auto b = Ferryd::start(config);
  auto first = ask(*a, "shared answer");
  EXPECT_EQ(first.header("x-ferry-cache"), "miss");
  // a writes to Redis in the background: wait until the entry is there.
  ASSERT_TRUE(eventually([&] {
    return redis.cli({"--scan", "--pattern", "ferry:cache:c:*"}).find("c:") != std::string::npos;
  }));
  EXPECT_EQ(ask(*b, "shared answer").header("x-ferry-cache"), "hit");
  EXPECT_EQ(up.requests(), 1);
}

// Two tenants behind auth, one cache: by default neither is served the
// other's answers, exact or semantic. (A finding: Bob's different question,
// similarity 0.955, got Alice's answer with her SSN in it.)
std::string tenants(const std::string& cache_options) {
  return "[log]\nlevel = \"info\"\n\n[providers.mock]\nplugin = \"mock\"\n\n"
         "[middleware.auth]\nplugin = \"auth\"\nkeys = [\n"
         "  { sha256 = \"4d692786b022a5d5a48381dcaf1e5e346366feb5579a1d699de2991d153b05f9\", owner = "
         "\"alice\", "
         "team = \"t\" },\n"
         "  { sha256 = \"126fa001bf47b8fca67b958c7cdb3745b15c8eab28dd77b91a53305b5f90632f\", owner = "
         "\"bob\", "
         "team = \"t\" },\n]\n\n"
         "[middleware.cache]\nplugin = \"cache\"\nsemantic = { model = \"embedder\", threshold = 0.9 }\n" +
         cache_options +
         "\n[pipelines.chat]\nmodels = [\"m\"]\nproviders = [\"mock\"]\nmiddleware = [\"auth\", "
         "\"cache\"]\n\n"
         "[pipelines.embed]\nmodels = [\"embedder\"]\nproviders = [\"mock\"]\n";
}
const HeaderList kAlice = {{"authorization", "Bearer sk-test-alice"}};
const HeaderList kBob = {{"authorization", "Bearer sk-test-bob"}};

TEST(CacheTenancy, ATenantIsNeverServedAnotherTenantsAnswerByDefault) {
  auto f = Ferryd::start(tenants(""));
  auto mine = ask(*f, "My SSN is 078-05-1120, remember it", "", kAlice);
  ASSERT_EQ(mine.status, 200) << mine.body;
  EXPECT_EQ(mine.header("x-ferry-cache"), "miss");
  // The same question from Bob: a miss (no membership oracle), his own answer.
  auto same = ask(*f, "My SSN is 078-05-1120, remember it", "", kBob);
  EXPECT_EQ(same.header("x-ferry-cache"), "miss");
  // Alice still hits her own entries, exact and near.
  EXPECT_EQ(ask(*f, "My SSN is 078-05-1120, remember it", "", kAlice).header("x-ferry-cache"), "hit");
  EXPECT_EQ(ask(*f, "MY SSN IS 078-05-1120 remember it", "", kAlice).header("x-ferry-cache"), "hit");
  // A question only Alice asked: no semantic hit for Bob's near version.
  ask(*f, "What is the capital of France?", "", kAlice);
  auto bob = ask(*f, "what is the capital of france", "", kBob);
  EXPECT_EQ(bob.header("x-ferry-cache"), "miss");
  EXPECT_EQ(content(bob), "Ferry mock reply: what is the capital of france");
}

TEST(CacheTenancy, ATeamOrGlobalScopeSharesOnlyWhenConfigured) {
  auto team = Ferryd::start(tenants("scope = \"team\"\n"));
  ask(*team, "What is the capital of France?", "", kAlice);
  auto bob = ask(*team, "what is the capital of france", "", kBob);
  EXPECT_EQ(bob.header("x-ferry-cache"), "hit");
  EXPECT_EQ(content(bob), "Ferry mock reply: What is the capital of France?");

  auto bad = ferryd_refusing(tenants("scope = \"everyone\"\n"));
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.output.find("must be \"key\", \"user\", \"team\" or \"global\""), std::string::npos)
      << bad.output;
}

}  // namespace
}  // namespace ferry::test
