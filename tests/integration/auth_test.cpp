// The auth middleware through the real ferryd: keys in TOML (by hash), keys
// made, listed and revoked with `ferry keys` over the admin API, shared by two
// instances on a real Redis, and feeding rate-limit through request tags.
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <ctime>
#include <thread>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

// SHA-256 of "sk-test-alice".
constexpr const char* kAliceHash = "4d692786b022a5d5a48381dcaf1e5e346366feb5579a1d699de2991d153b05f9";

std::string with_auth(const std::string& auth_options, const std::string& state_block = "",
                      const std::string& more_middleware = "", const std::string& more_blocks = "") {
  return "[log]\nlevel = \"info\"\n\n" + state_block + "\n[providers.mock]\nplugin = \"mock\"\n\n" +
         "[middleware.auth]\nplugin = \"auth\"\n" + auth_options + "\n" + more_blocks +
         "\n[pipelines.default]\nmodels = [\"m\", \"other\"]\nproviders = [\"mock\"]\nmiddleware = "
         "[\"auth\"" +
         more_middleware + "]\n";
}

int ask(const Ferryd& f, const HeaderList& headers, const std::string& model = "m") {
  return http_post(f.address(), "/v1/chat/completions", chat_body(model, "hi"), headers).status;
}
HeaderList bearer(const std::string& k) { return {{"authorization", "Bearer " + k}}; }

// `ferry keys ...` against f's admin listener; {status, output}.
RunResult keys(const Ferryd& f, std::vector<std::string> args) {
  std::vector<std::string> argv{FERRY_TEST_CLI, "keys"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--admin");
  argv.push_back(f.admin_address());
  return run(argv);
}

TEST(Auth, KeysFromTheTomlAreKnownByTheirHashOnly) {
  auto f = Ferryd::start(with_auth("keys = [\n  { sha256 = \"" + std::string(kAliceHash) +
                                   "\", owner = \"alice\", models = [\"m\"] },\n  { sha256 = \"" +
                                   std::string(64, 'a') +
                                   "\", owner = \"old\", expires = \"2020-01-01\" },\n]\n"));
  auto missing = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"));
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.json()["error"]["code"], "missing_api_key");
  auto wrong = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"), bearer("sk-nope"));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.json()["error"]["code"], "invalid_api_key");
  EXPECT_EQ(ask(*f, bearer("sk-test-alice")), 200);
  EXPECT_EQ(ask(*f, {{"x-api-key", "sk-test-alice"}}), 200);
  auto model =
      http_post(f->address(), "/v1/chat/completions", chat_body("other", "hi"), bearer("sk-test-alice"));
  EXPECT_EQ(model.status, 403);
  EXPECT_NE(model.json()["error"]["message"].get<std::string>().find("may not use model 'other'"),
            std::string::npos);
  // Streaming clients are refused the same way, before any event.
  auto stream = http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", "hi", R"("stream":true)"));
  EXPECT_EQ(stream.status, 401);
  // The access log names the key by its id, never by the key.
  ASSERT_TRUE(f->log_line("tag.user=\"alice\""));
  EXPECT_EQ(f->output().find("sk-test-alice"), std::string::npos);
}

TEST(Auth, TheCliCreatesListsAndRevokesKeys) {
  auto f = Ferryd::start(with_auth(""));
  auto created = keys(*f, {"create", "--owner", "bob", "--team", "search", "--models", "m"});
  ASSERT_EQ(created.status, 0) << created.output;
  auto key = created.output.substr(0, created.output.find('\n'));
  ASSERT_TRUE(key.starts_with("fk-")) << created.output;
  EXPECT_NE(created.output.find("shown once"), std::string::npos);
  EXPECT_EQ(ask(*f, bearer(key)), 200);
  EXPECT_EQ(ask(*f, bearer(key), "other"), 403);

  auto listed = keys(*f, {"list"});
  ASSERT_EQ(listed.status, 0) << listed.output;
  EXPECT_NE(listed.output.find("bob"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find("search"), std::string::npos) << listed.output;
  EXPECT_EQ(listed.output.find(key), std::string::npos) << "a listing never shows a key";
  // The id is the first column of the second line.
  auto line = listed.output.substr(listed.output.find('\n') + 1);
  std::string id = line.substr(0, line.find(' '));
  ASSERT_EQ(id.size(), 12u) << listed.output;

  auto revoked = keys(*f, {"revoke", id});
  ASSERT_EQ(revoked.status, 0) << revoked.output;
  auto refused = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"), bearer(key));
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.json()["error"]["code"], "revoked_api_key");
  EXPECT_EQ(keys(*f, {"revoke", "000000000000"}).status, 1);
}

TEST(AuthRedis, AKeyMadeOnOneInstanceWorksOnAnotherUntilRevoked) {
  RedisServer redis;
  std::string state = "[state]\nbackend = \"redis\"\nurl = \"" + redis.url() + "\"\n";
  auto config = with_auth("cache_ms = 200\n", state);
  auto a = Ferryd::start(config);
  auto b = Ferryd::start(config);
  auto created = keys(*a, {"create", "--owner", "carol"});
  ASSERT_EQ(created.status, 0) << created.output;
  auto key = created.output.substr(0, created.output.find('\n'));
  EXPECT_EQ(ask(*b, bearer(key)), 200);
  auto line = keys(*b, {"list"}).output;
  line = line.substr(line.find('\n') + 1);
  ASSERT_EQ(keys(*b, {"revoke", line.substr(0, line.find(' '))}).status, 0);
  EXPECT_TRUE(eventually([&] { return ask(*a, bearer(key)) == 401; }))
      << "revocation did not reach the other instance";
}

TEST(Auth, TagsLetRateLimitCountATeamAcrossItsKeys) {
  auto f = Ferryd::start(with_auth("", "", ", \"limits\"",
                                   "[middleware.limits]\nplugin = \"rate-limit\"\n"
                                   "limits = [{ per = \"team\", requests_per_minute = 3 }]\n"));
  auto k1 = keys(*f, {"create", "--owner", "dan", "--team", "blue"}).output;
  auto k2 = keys(*f, {"create", "--owner", "eve", "--team", "blue"}).output;
  k1 = k1.substr(0, k1.find('\n'));
  k2 = k2.substr(0, k2.find('\n'));
  EXPECT_EQ(ask(*f, bearer(k1)), 200);
  EXPECT_EQ(ask(*f, bearer(k2)), 200);
  EXPECT_EQ(ask(*f, bearer(k1)), 200);
  EXPECT_EQ(ask(*f, bearer(k2)), 429) << "team blue's third request was its last";
}

TEST(Auth, ExplainsAnUnknownAdminRoute) {
  auto f = Ferryd::start(with_auth(""));
  auto r = http_get(f->admin_address(), "/admin/plugins/nope/keys");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("these have one: auth"), std::string::npos) << r.body;
}

// An expiry that cannot be honoured is refused, never read as "no expiry"
// (0 means never in a key record: 1970-01-01 was a key that never expired).
TEST(Auth, AKeyIsCreatedOnlyWithAnExpiryInTheFuture) {
  auto f = Ferryd::start(with_auth("keys = [\n  { sha256 = \"" + std::string(kAliceHash) +
                                   "\", owner = \"alice\", expires = \"1970-01-01\" },\n]\n"));
  auto old = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"), bearer("sk-test-alice"));
  EXPECT_EQ(old.status, 401);
  EXPECT_EQ(old.json()["error"]["code"], "expired_api_key") << old.body;

  for (const char* body : {R"({"owner":"x","expires":"1970-01-01"})", R"({"owner":"x","expires":"abc"})",
                           R"({"owner":"x","expires":5})", R"({"owner":"x","expires_in_days":1e300})",
                           R"({"owner":"x","expires_in_days":"abc"})",
                           R"({"owner":"x","expires_in_days":-1})", R"({"owner":"x","expires_in_days":0})"}) {
    auto r = http_post(f->admin_address(), "/admin/plugins/auth/keys", body);
    EXPECT_EQ(r.status, 400) << body << ": " << r.body;
    EXPECT_EQ(r.json()["error"]["code"], "invalid_expires") << body << ": " << r.body;
  }
  auto made =
      http_post(f->admin_address(), "/admin/plugins/auth/keys", R"({"owner":"x","expires_in_days":1})");
  ASSERT_EQ(made.status, 201) << made.body;
  EXPECT_GT(made.json().value("expires", int64_t{0}), 0) << made.body;
  EXPECT_EQ(ask(*f, bearer(made.json().value("key", ""))), 200);
}

// Rotation: a new secret for the same key id (its limits and budgets go on),
// the old secret working through a grace period, and a revocation that
// takes both.
TEST(Auth, ARotatedKeyKeepsItsIdAndTheOldSecretWorksThroughTheGrace) {
  auto f = Ferryd::start(with_auth(""));
  auto created = keys(*f, {"create", "--owner", "erin"});
  ASSERT_EQ(created.status, 0) << created.output;
  std::string k1 = created.output.substr(0, created.output.find('\n'));
  std::string id = http_get(f->admin_address(), "/admin/plugins/auth/keys").json()["keys"][0]["id"];

  auto rotated = keys(*f, {"rotate", id, "--grace-hours", "1"});
  ASSERT_EQ(rotated.status, 0) << rotated.output;
  std::string k2 = rotated.output.substr(0, rotated.output.find('\n'));
  ASSERT_TRUE(k2.starts_with("fk-")) << rotated.output;
  EXPECT_NE(k1, k2);
  EXPECT_NE(rotated.output.find("the previous one works until"), std::string::npos) << rotated.output;
  // Both work in the grace period, and both are the same key to limits and logs.
  for (const auto& [k, rid] : {std::pair{k1, "rot-old"}, std::pair{k2, "rot-new"}}) {
    auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"),
                       {{"authorization", "Bearer " + k}, {"x-request-id", rid}});
    EXPECT_EQ(r.status, 200) << r.body;
    auto line = f->log_line(std::string("request_id=") + rid + " ");
    ASSERT_TRUE(line);
    EXPECT_NE(line->find("tag.key=\"" + id + "\""), std::string::npos) << *line;
  }

  // No grace: the secret it replaces stops at once.
  auto now = http_post(f->admin_address(), "/admin/plugins/auth/keys/" + id + "/rotate", R"({"grace_s":0})");
  ASSERT_EQ(now.status, 201) << now.body;
  std::string k3 = now.json()["key"];
  EXPECT_EQ(ask(*f, bearer(k2)), 401);
  EXPECT_EQ(ask(*f, bearer(k3)), 200);

  // Revoking the id during a grace period revokes the old secret with the new.
  auto again =
      http_post(f->admin_address(), "/admin/plugins/auth/keys/" + id + "/rotate", R"({"grace_s":3600})");
  ASSERT_EQ(again.status, 201) << again.body;
  std::string k4 = again.json()["key"];
  EXPECT_EQ(ask(*f, bearer(k3)), 200);
  ASSERT_EQ(keys(*f, {"revoke", id}).status, 0);
  EXPECT_EQ(ask(*f, bearer(k3)), 401);
  EXPECT_EQ(ask(*f, bearer(k4)), 401);

  EXPECT_EQ(
      http_post(f->admin_address(), "/admin/plugins/auth/keys/" + id + "/rotate", R"({"grace_s":-5})").status,
      400);
}

// ---- signed requests: what a client computes (sdk docs: plugins/middleware/auth/README.md)
std::string hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) (out += d[p[i] >> 4]) += d[p[i] & 15];
  return out;
}
HeaderList signed_headers(const std::string& key, const std::string& secret, const std::string& body,
                          int64_t when = std::time(nullptr)) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest);
  std::string ts = std::to_string(when);
  std::string text = "POST\n/v1/chat/completions\n" + ts + "\n" + hex(digest, sizeof digest);
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac, &len);
  return {{"authorization", "Bearer " + key},
          {"x-ferry-timestamp", ts},
          {"x-ferry-signature", "v1=" + hex(mac, len)}};
}

TEST(AuthSigning, ASignedKeysRequestMustCarryAFreshUnusedSignatureOfItsBody) {
  const std::string secret = "signing-secret-of-alice-0123456789";
  auto f =
      Ferryd::start(with_auth("keys = [\n  { sha256 = \"" + std::string(kAliceHash) +
                              "\", owner = \"alice\", signing_secret_env = \"FERRY_TEST_SIGNING\" },\n]\n"),
                    {}, {"FERRY_TEST_SIGNING=" + secret});
  std::string body = chat_body("m", "pay bob $5");
  auto post = [&](const std::string& b, const HeaderList& h) {
    return http_post(f->address(), "/v1/chat/completions", b, h);
  };
  auto unsigned_one = post(body, bearer("sk-test-alice"));
  EXPECT_EQ(unsigned_one.status, 401);
  EXPECT_EQ(unsigned_one.json()["error"]["code"], "signature_required") << unsigned_one.body;

  auto headers = signed_headers("sk-test-alice", secret, body);
  EXPECT_EQ(post(body, headers).status, 200);
  // The same request again is a replay.
  auto replay = post(body, headers);
  EXPECT_EQ(replay.status, 401);
  EXPECT_EQ(replay.json()["error"]["code"], "replayed_signature") << replay.body;
  // Another body under that signature does not match.
  auto altered = post(chat_body("m", "pay bob $5000"), signed_headers("sk-test-alice", secret, body));
  EXPECT_EQ(altered.json()["error"]["code"], "invalid_signature") << altered.body;
  // A signature from ten minutes ago is stale (the window is 300 s).
  auto stale = post(body, signed_headers("sk-test-alice", secret, body, std::time(nullptr) - 600));
  EXPECT_EQ(stale.json()["error"]["code"], "stale_signature") << stale.body;
  // The wrong secret.
  auto forged = post(body, signed_headers("sk-test-alice", "not-the-secret-0123456789", body));
  EXPECT_EQ(forged.json()["error"]["code"], "invalid_signature") << forged.body;
  EXPECT_EQ(f->output().find(secret), std::string::npos);
}

TEST(AuthSigning, AKeyCreatedSignedShowsItsSecretOnceAndNeverLists) {
  auto f = Ferryd::start(with_auth(""));
  auto made = http_post(f->admin_address(), "/admin/plugins/auth/keys", R"({"owner":"sig","signed":true})");
  ASSERT_EQ(made.status, 201) << made.body;
  std::string key = made.json()["key"], secret = made.json()["signing_secret"];
  ASSERT_TRUE(secret.starts_with("fs-")) << made.body;
  std::string body = chat_body("m", "hi");
  EXPECT_EQ(http_post(f->address(), "/v1/chat/completions", body, bearer(key)).status, 401);
  EXPECT_EQ(http_post(f->address(), "/v1/chat/completions", body, signed_headers(key, secret, body)).status,
            200);
  auto listed = http_get(f->admin_address(), "/admin/plugins/auth/keys");
  EXPECT_EQ(listed.body.find(secret), std::string::npos) << listed.body;
  EXPECT_EQ(listed.json()["keys"][0]["signed"], true) << listed.body;
}

}  // namespace
}  // namespace ferry::test
