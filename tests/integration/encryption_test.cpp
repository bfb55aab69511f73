// Encryption at rest: what the shared state keeps that can hold prompts or
// answers (cached answers, key records) is sealed with AES-256-GCM in Redis
// and SQLite, opens again after a restart and after a key rotation, and
// reads as absent without the key.
#include <fstream>
#include <sstream>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

const std::string kKey1 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kKey2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

std::string read_all(const std::string& path) {
  std::stringstream ss;
  ss << std::ifstream(path, std::ios::binary).rdbuf();
  return ss.str();
}

std::string cached_with(const MockUpstream& up, const std::string& state) {
  return "[log]\nlevel = \"info\"\n\n" + state + "\n" + openai_provider("up", up) +
         "[middleware.cache]\nplugin = \"cache\"\nshared = true\n\n"
         "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"up\"]\nmiddleware = [\"cache\"]\n";
}

TEST(EncryptionAtRest, CachedAnswersInRedisAreSealedAndStillServed) {
  MockUpstream up;
  RedisServer redis;
  std::string state = "[state]\nbackend = \"redis\"\nurl = \"" + redis.url() +
                      "\"\nencryption_key_env = \"FERRY_TEST_STATE_KEY\"\n";
  auto a = Ferryd::start(cached_with(up, state), {}, {"FERRY_TEST_STATE_KEY=" + kKey1});
  auto b = Ferryd::start(cached_with(up, state), {}, {"FERRY_TEST_STATE_KEY=" + kKey1});
  auto first = http_post(a->address(), "/v1/chat/completions", chat_body("m", "the secret recipe"));
  ASSERT_EQ(first.status, 200);
  std::string key;
  ASSERT_TRUE(eventually([&] {
    key = redis.cli({"--scan", "--pattern", "ferry:cache:c:*"});
    return key.find("c:") != std::string::npos;
  }));
  key = key.substr(0, key.find('\n'));
  std::string stored = redis.cli({"GET", key});
  EXPECT_TRUE(stored.starts_with("fe1:")) << stored;
  EXPECT_EQ(stored.find("secret recipe"), std::string::npos) << stored;
  // The other instance opens it with the same key.
  auto hit = http_post(b->address(), "/v1/chat/completions", chat_body("m", "the secret recipe"));
  EXPECT_EQ(hit.header("x-ferry-cache"), "hit");
  EXPECT_EQ(hit.json()["choices"][0]["message"]["content"], "mock reply: the secret recipe");
  EXPECT_EQ(up.requests(), 1);
}

std::string keyed(const std::string& state) {
  return "[log]\nlevel = \"info\"\n\n" + state +
         "\n[providers.mock]\nplugin = \"mock\"\n\n[middleware.auth]\nplugin = \"auth\"\n\n"
         "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"mock\"]\nmiddleware = [\"auth\"]\n";
}

TEST(EncryptionAtRest, KeyRecordsInSqliteSurviveARestartAndAKeyRotation) {
  TempDir dir;
  std::string db = dir.path() + "/state.db";
  std::string state =
      "[state]\nbackend = \"sqlite\"\npath = \"" + db + "\"\nencryption_key_env = \"FERRY_TEST_STATE_KEY\"\n";
  std::string secret_key;
  {
    auto f = Ferryd::start(keyed(state), {}, {"FERRY_TEST_STATE_KEY=" + kKey1});
    auto made = http_post(f->admin_address(), "/admin/plugins/auth/keys",
                          R"({"owner":"zelda-the-owner","team":"hyrule-team"})");
    ASSERT_EQ(made.status, 201) << made.body;
    secret_key = made.json()["key"];
    EXPECT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"),
                        {{"authorization", "Bearer " + secret_key}})
                  .status,
              200);
    EXPECT_EQ(f->stop(), 0);
  }
  std::string bytes = read_all(db) + read_all(db + "-wal");
  ASSERT_FALSE(bytes.empty());
  EXPECT_EQ(bytes.find("zelda-the-owner"), std::string::npos) << "a key record in clear at rest";
  EXPECT_EQ(bytes.find("hyrule-team"), std::string::npos);
  EXPECT_NE(bytes.find("fe1:"), std::string::npos);

  auto ask = [&](Ferryd& f) {
    return http_post(f.address(), "/v1/chat/completions", chat_body("m", "hi"),
                     {{"authorization", "Bearer " + secret_key}})
        .status;
  };
  // A new key seals from now on; the old one still opens what it sealed.
  std::string rotated = state + "decryption_key_envs = [\"FERRY_TEST_OLD_KEY\"]\n";
  {
    auto f =
        Ferryd::start(keyed(rotated), {}, {"FERRY_TEST_STATE_KEY=" + kKey2, "FERRY_TEST_OLD_KEY=" + kKey1});
    EXPECT_EQ(ask(*f), 200);
  }
  // Without the key that sealed it, the record reads as absent: refused.
  {
    auto f = Ferryd::start(keyed(state), {}, {"FERRY_TEST_STATE_KEY=" + kKey2});
    EXPECT_EQ(ask(*f), 401);
    EXPECT_TRUE(f->log_line("sealed with a key that is not configured"));
  }
  auto bad = ferryd_refusing(keyed(state), {"FERRY_TEST_STATE_KEY=too-short"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.output.find("is not 32 bytes"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace ferry::test
