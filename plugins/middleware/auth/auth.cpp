// auth: virtual API keys for clients. Keys are stored hashed (SHA-256): the
// ones in TOML by their hash only, the ones created through the admin API in
// the shared state, so every ferryd on the same Redis (or SQLite file) knows
// them. A key carries an owner, an optional team, the models and pipelines it
// may use and an expiry. The key's id, owner and team become request tags
// that rate-limit and budget use.
#include <fnmatch.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <charconv>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

constexpr int64_t kMaxExpiryDays = 36'500;  // a hundred years: far enough, and no overflow

using ferry::sdk::AdminReply;
using ferry::sdk::AdminRequest;
using ferry::sdk::Context;
using ferry::sdk::Json;
using ferry::sdk::JsonWriter;
using ferry::sdk::LogLevel;
using ferry::sdk::OwnedJson;
using ferry::sdk::StateOp;
using ferry::sdk::StateResult;
using ferry::sdk::Status;

std::string to_hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view s) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  return to_hex(digest, sizeof digest);
}

// HMAC-SHA256 of `data` under `key`, as 64 hex digits.
std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len))
    return {};
  return to_hex(mac, len);
}

int64_t now_s() {
  return static_cast<int64_t>(ferry::sdk::host().clock_ns(FERRY_CLOCK_REALTIME) / 1'000'000'000);
}

// "2027-01-31" or "2027-01-31T12:00:00Z" -> Unix seconds; nullopt if neither.
std::optional<int64_t> parse_date(std::string_view text) {
  tm t{};
  int y, mo, d, h = 0, mi = 0, s = 0;
  std::string str(text);
  if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2dZ", &y, &mo, &d, &h, &mi, &s) != 6 &&
      (str.size() != 10 || std::sscanf(str.c_str(), "%4d-%2d-%2d", &y, &mo, &d) != 3))
    return std::nullopt;
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = d;
  t.tm_hour = h;
  t.tm_min = mi;
  t.tm_sec = s;
  return static_cast<int64_t>(timegm(&t));
}

struct KeyRecord {
  std::string id;  // the first 12 hex digits of the hash: safe to log and to show
  std::string owner;
  std::string team;
  std::vector<std::string> models;     // globs; empty: all
  std::vector<std::string> pipelines;  // empty: all
  int64_t created = 0;
  int64_t expires = 0;  // Unix seconds; 0: never
  bool revoked = false;
  bool from_config = false;
  // After a rotation: the hash of the key this one replaced (still valid for
  // its grace period), so that revoking the id revokes both.
  std::string previous;
  // Set: every request must be signed with it (HMAC-SHA256). Stored, since
  // checking a signature needs it, but never listed or logged.
  std::string signing_secret;

  // The record as stored (`stored`: with the signing secret) or as shown.
  std::string to_json(bool stored = false) const {
    JsonWriter w;
    w.begin_object().key("id").value(id).key("owner").value(owner).key("team").value(team);
    w.key("models").begin_array();
    for (const auto& m : models) w.value(m);
    w.end_array().key("pipelines").begin_array();
    for (const auto& p : pipelines) w.value(p);
    w.end_array();
    w.key("created").value(created).key("expires").value(expires).key("revoked").value(revoked);
    if (from_config) w.key("source").value("config");
    if (!previous.empty()) w.key("previous").value(previous);
    if (!signing_secret.empty()) w.key("signed").value(true);
    if (stored && !signing_secret.empty()) w.key("signing_secret").value(signing_secret);
    w.end_object();
    return w.str();
  }
  static std::vector<std::string> strings(const Json& j, const std::string& at) {
    std::vector<std::string> out;
    for (size_t i = 0, n = j.size(at); i < n; ++i)
      if (auto s = j.string(at + "/" + std::to_string(i))) out.emplace_back(*s);
    return out;
  }
  static std::optional<KeyRecord> from_json(std::string_view text) {
    auto doc = OwnedJson::parse(text);
    if (!doc) return std::nullopt;
    Json j = doc->json();
    KeyRecord r;
    r.id = std::string(j.string("/id").value_or(""));
    r.owner = std::string(j.string("/owner").value_or(""));
    r.team = std::string(j.string("/team").value_or(""));
    r.models = strings(j, "/models");
    r.pipelines = strings(j, "/pipelines");
    r.created = j.integer("/created").value_or(0);
    r.expires = j.integer("/expires").value_or(0);
    r.revoked = j.boolean("/revoked").value_or(false);
    r.previous = std::string(j.string("/previous").value_or(""));
    r.signing_secret = std::string(j.string("/signing_secret").value_or(""));
    if (r.id.empty()) return std::nullopt;
    return r;
  }
};

bool matches_any(const std::vector<std::string>& globs, std::string_view value) {
  if (globs.empty()) return true;
  std::string v(value);
  for (const auto& g : globs)
    if (fnmatch(g.c_str(), v.c_str(), 0) == 0) return true;
  return false;
}

class Auth final : public ferry::sdk::Middleware {
 public:
  explicit Auth(ferry::sdk::Config& c) {
    c.reject_unknown_keys({"keys", "admin_keys", "cache_ms", "signature_window_s"});
    window_s_ = c.integer("/signature_window_s", 300, 1, 86'400);
    admin_keys_ = c.json().boolean("/admin_keys").value_or(true);
    cache_ns_ = static_cast<uint64_t>(c.integer("/cache_ms", 5000, 0, 3'600'000)) * 1'000'000;
    for (size_t i = 0, n = c.json().size("/keys"); i < n; ++i) {
      std::string at = "/keys/" + std::to_string(i);
      for (const auto& k : c.keys(at))
        if (k != "sha256" && k != "owner" && k != "team" && k != "models" && k != "pipelines" &&
            k != "expires" && k != "signing_secret_env")
          c.error(at + "/" + k,
                  "unknown key '" + k +
                      "' (expected sha256, owner, team, models, pipelines, expires, signing_secret_env)");
      std::string hash = c.required_string(at + "/sha256");
      if (hash.size() != 64 || hash.find_first_not_of("0123456789abcdef") != std::string::npos)
        c.error(at + "/sha256",
                "must be the key's SHA-256 as 64 lowercase hex digits (ferry keys hash KEY prints it)");
      KeyRecord r;
      r.id = hash.substr(0, 12);
      r.owner = c.required_string(at + "/owner");
      r.team = c.string(at + "/team");
      r.models = KeyRecord::strings(c.json(), at + "/models");
      r.pipelines = KeyRecord::strings(c.json(), at + "/pipelines");
      r.from_config = true;
      if (auto e = c.json().string(at + "/expires")) {
        auto t = parse_date(*e);
        if (!t) c.error(at + "/expires", "must be a date, \"2027-01-31\" or \"2027-01-31T12:00:00Z\"");
        // 0 would mean "never": a date at or before the epoch is simply past.
        r.expires = std::max<int64_t>(1, t.value_or(1));
      }
      if (auto env = c.string(at + "/signing_secret_env"); !env.empty()) {
        auto secret = ferry::sdk::secret(env);
        if (!secret || secret->size() < 16)
          c.error(at + "/signing_secret_env",
                  "environment variable " + env + " must hold the key's signing secret (16 bytes or more)");
        else
          r.signing_secret = std::string(*secret);
      }
      config_keys_[hash] = std::move(r);
    }
    if (config_keys_.empty() && !admin_keys_)
      c.error("", "no keys: list some in keys = [...] or leave admin_keys = true");
  }

  Status on_request(Context& ctx, Json& req) override {
    std::optional<std::string_view> token;
    if (auto h = ctx.header("authorization"); h && h->size() > 7 && h->substr(0, 7) == "Bearer ")
      token = h->substr(7);
    else
      token = ctx.header("x-api-key");
    if (!token || token->empty())
      return ctx.respond_error(401, "authentication_error",
                               "missing API key: send it as Authorization: Bearer <key> or x-api-key: <key>",
                               "missing_api_key");
    std::string hash = sha256_hex(*token);
    if (auto it = config_keys_.find(hash); it != config_keys_.end()) return admit(ctx, it->second, req);
    if (!admin_keys_) return invalid(ctx);
    if (auto cached = from_cache(hash)) return cached->id.empty() ? invalid(ctx) : admit(ctx, *cached, req);
    return ctx.state_then(StateOp::get("key:" + hash), [this, hash, req](Context& ctx, const StateResult& r) {
      if (r.unavailable()) {
        ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_auth_state_errors_total", 1);
        return ctx.respond_error(503, "authentication_error",
                                 "API keys cannot be checked right now (state backend unavailable)",
                                 "auth_unavailable");
      }
      std::optional<KeyRecord> rec;
      if (r.ok()) rec = KeyRecord::from_json(r.data);
      remember(hash, rec.value_or(KeyRecord{}));  // unknown keys too: a flood of bad keys stays local
      return rec ? admit(ctx, *rec, req) : invalid(ctx);
    });
  }

  Status on_admin(const AdminRequest& req, AdminReply reply) override {
    if (req.path == "/keys" && req.method == "GET") return list(reply);
    if (req.path == "/keys" && req.method == "POST") return create(req, reply);
    if (req.path.starts_with("/keys/") && req.path.ends_with("/rotate") && req.method == "POST")
      return rotate(std::string(req.path.substr(6, req.path.size() - 6 - 7)), req, reply);
    if (req.path.starts_with("/keys/") && req.method == "DELETE")
      return revoke(std::string(req.path.substr(6)), reply);
    reply.error(404, "unknown_url",
                "auth admin routes: GET /keys, POST /keys, POST /keys/ID/rotate, DELETE /keys/ID");
    return Status::kContinue;
  }

 private:
  static Status invalid(Context& ctx) {
    ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_auth_rejected_total{reason=\"invalid\"}", 1);
    return ctx.respond_error(401, "authentication_error", "invalid API key", "invalid_api_key");
  }

  Status admit(Context& ctx, const KeyRecord& k, const Json& req) {
    auto refuse = [&](int status, const char* reason, const std::string& message) {
      ferry::sdk::metric(FERRY_METRIC_COUNTER,
                         std::string("ferry_auth_rejected_total{reason=\"") + reason + "\"}", 1);
      return ctx.respond_error(status, status == 401 ? "authentication_error" : "permission_error", message,
                               reason);
    };
    if (k.revoked) return refuse(401, "revoked_api_key", "API key " + k.id + " has been revoked");
    if (k.expires && now_s() >= k.expires)
      return refuse(401, "expired_api_key", "API key " + k.id + " has expired");
    if (!matches_any(k.models, ctx.model()))
      return refuse(403, "model_not_allowed",
                    "API key " + k.id + " may not use model '" + std::string(ctx.model()) + "'");
    if (!matches_any(k.pipelines, ctx.pipeline()))
      return refuse(403, "pipeline_not_allowed",
                    "API key " + k.id + " may not use pipeline '" + std::string(ctx.pipeline()) + "'");
    ctx.set_tag("key", k.id);
    ctx.set_tag("user", k.owner);
    if (!k.team.empty()) ctx.set_tag("team", k.team);
    if (!k.signing_secret.empty()) return verify_signature(ctx, k, req);
    return Status::kContinue;
  }

  // A signed key's request carries x-ferry-timestamp (Unix seconds) and
  // x-ferry-signature: v1=HMAC-SHA256(secret, "POST\n" PATH "\n" TIMESTAMP
  // "\n" SHA-256(BODY) in hex), all hex lowercase. The body is the bytes the
  // client sent (auth runs first, before anything edits the request). A
  // timestamp outside the window is stale; a signature seen before within it
  // is a replay.
  Status verify_signature(Context& ctx, const KeyRecord& k, const Json& req) {
    auto refuse = [&](const char* code, const std::string& message) {
      ferry::sdk::metric(FERRY_METRIC_COUNTER,
                         std::string("ferry_auth_rejected_total{reason=\"") + code + "\"}", 1);
      return ctx.respond_error(401, "authentication_error", "API key " + k.id + ": " + message, code);
    };
    auto stamp = ctx.header("x-ferry-timestamp");
    auto signature = ctx.header("x-ferry-signature");
    if (!stamp || !signature)
      return refuse("signature_required",
                    "this key signs its requests: send x-ferry-timestamp and x-ferry-signature");
    int64_t ts = 0;
    auto [end, ec] = std::from_chars(stamp->data(), stamp->data() + stamp->size(), ts);
    if (ec != std::errc() || end != stamp->data() + stamp->size())
      return refuse("invalid_signature", "x-ferry-timestamp must be Unix seconds");
    int64_t skew = now_s() - ts;
    if (skew > window_s_ || skew < -window_s_)
      return refuse("stale_signature", "the request was signed " + std::to_string(skew) +
                                           " s from now; the window is " + std::to_string(window_s_) + " s");
    std::string path = ctx.embeddings() ? "/v1/embeddings" : "/v1/chat/completions";
    std::string expected =
        "v1=" + hmac_sha256_hex(k.signing_secret,
                                "POST\n" + path + "\n" + std::string(*stamp) + "\n" + sha256_hex(req.dump()));
    if (signature->size() != expected.size() ||
        CRYPTO_memcmp(signature->data(), expected.data(), expected.size()))
      return refuse("invalid_signature", "the signature does not match the request");
    // Seen once per window, on every instance sharing the state.
    uint64_t ttl_ms = static_cast<uint64_t>(2 * window_s_) * 1000;
    return ctx.state_then(
        StateOp::set("sig:" + expected.substr(3), "1", ttl_ms, true),
        [id = k.id](Context& ctx, const StateResult& r) {
          if (r.unavailable())
            return ctx.respond_error(503, "authentication_error",
                                     "signatures cannot be checked right now (state backend "
                                     "unavailable)",
                                     "auth_unavailable");
          if (r.applied) return Status::kContinue;
          ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_auth_rejected_total{reason=\"replayed_signature\"}",
                             1);
          return ctx.respond_error(401, "authentication_error",
                                   "API key " + id + ": this signed request was already used",
                                   "replayed_signature");
        });
  }

  // Keys read from the state are trusted for cache_ms: a revocation on
  // another instance takes effect within that time (at once on this one).
  std::optional<KeyRecord> from_cache(const std::string& hash) {
    if (!cache_ns_) return std::nullopt;
    std::lock_guard lock(mu_);
    auto it = cache_.find(hash);
    if (it == cache_.end() || ferry::sdk::monotonic_ns() - it->second.second > cache_ns_) return std::nullopt;
    return it->second.first;
  }
  void remember(const std::string& hash, KeyRecord rec) {
    if (!cache_ns_) return;
    std::lock_guard lock(mu_);
    if (cache_.size() > 100'000) cache_.clear();
    cache_[hash] = {std::move(rec), ferry::sdk::monotonic_ns()};
  }
  void forget(const std::string& hash) {
    std::lock_guard lock(mu_);
    cache_.erase(hash);
  }

  Status list(AdminReply reply) {
    std::string config_part;
    for (const auto& [hash, rec] : config_keys_)
      config_part += (config_part.empty() ? "" : ",") + rec.to_json();
    ferry::sdk::state_call(StateOp::scan("key:", 100'000), [reply, config_part](const StateResult& r) {
      if (!r.ok()) return reply.error(503, "state_unavailable", "the state backend cannot be reached");
      std::string items = config_part;
      if (auto doc = OwnedJson::parse(r.data)) {
        Json j = doc->json();
        for (size_t i = 0, n = j.size(); i < n; ++i)
          if (auto v = j.string("/" + std::to_string(i) + "/value"))
            if (auto rec = KeyRecord::from_json(*v)) items += (items.empty() ? "" : ",") + rec->to_json();
      }
      reply.send(200, "{\"keys\":[" + items + "]}");
    });
    return Status::kContinue;
  }

  Status create(const AdminRequest& req, AdminReply reply) {
    if (!admin_keys_) {
      reply.error(409, "admin_keys_disabled",
                  "this auth block has admin_keys = false: keys come from its TOML only");
      return Status::kContinue;
    }
    auto body = OwnedJson::parse(req.body.empty() ? std::string_view("{}") : req.body);
    if (!body || body->json().type() != FERRY_JSON_OBJECT) {
      reply.error(400, "invalid_json",
                  "the body must be a JSON object: {\"owner\": ..., \"team\": ..., ...}");
      return Status::kContinue;
    }
    Json j = body->json();
    KeyRecord rec;
    rec.owner = std::string(j.string("/owner").value_or(""));
    if (rec.owner.empty()) {
      reply.error(400, "missing_owner", "owner is required");
      return Status::kContinue;
    }
    rec.team = std::string(j.string("/team").value_or(""));
    rec.models = KeyRecord::strings(j, "/models");
    rec.pipelines = KeyRecord::strings(j, "/pipelines");
    rec.created = now_s();
    // 0 means "never" in a record: every way of asking for an expiry must
    // give a time in the future, or a 400.
    if (j.has("/expires_in_days")) {
      auto days = j.number("/expires_in_days");
      if (!days || !(*days > 0) || *days > kMaxExpiryDays) {
        reply.error(
            400, "invalid_expires",
            "expires_in_days must be a number of days above 0 and at most " + std::to_string(kMaxExpiryDays));
        return Status::kContinue;
      }
      rec.expires = rec.created + std::max<int64_t>(1, static_cast<int64_t>(*days * 86400));
    }
    if (j.has("/expires")) {
      auto at = j.string("/expires");
      auto t = at ? parse_date(*at) : std::nullopt;
      if (!t) {
        reply.error(400, "invalid_expires", "expires must be \"2027-01-31\" or \"2027-01-31T12:00:00Z\"");
        return Status::kContinue;
      }
      if (*t <= rec.created) {
        reply.error(400, "invalid_expires", "expires (" + std::string(*at) + ") is not in the future");
        return Status::kContinue;
      }
      rec.expires = *t;
    }
    std::string key = new_secret();
    if (key.empty()) {
      reply.error(500, "no_randomness", "could not draw a random key");
      return Status::kContinue;
    }
    if (j.has("/signed") && j.type("/signed") != FERRY_JSON_BOOL) {
      reply.error(400, "invalid_signed", "signed must be true or false");
      return Status::kContinue;
    }
    if (j.boolean("/signed").value_or(false)) {
      rec.signing_secret = new_secret("fs-");
      if (rec.signing_secret.empty()) {
        reply.error(500, "no_randomness", "could not draw a random secret");
        return Status::kContinue;
      }
    }
    std::string hash = sha256_hex(key);
    rec.id = hash.substr(0, 12);
    std::string stored = rec.to_json(true);
    std::string shown = rec.to_json();
    std::string signing = rec.signing_secret;
    ferry::sdk::state_call(
        StateOp::set("id:" + rec.id, hash, 0, true),
        [reply, hash, stored, shown, key, signing, id = rec.id](const StateResult& r) {
          if (!r.ok()) return reply.error(503, "state_unavailable", "the state backend cannot be reached");
          if (!r.applied) return reply.error(409, "id_collision", "key id " + id + " exists; try again");
          ferry::sdk::state_call(
              StateOp::set("key:" + hash, stored), [reply, shown, key, signing](const StateResult& r) {
                if (!r.ok())
                  return reply.error(503, "state_unavailable", "the state backend cannot be reached");
                // The key (and its signing secret) are in this answer and nowhere else.
                std::string out = shown;
                std::string once = "\"key\":" + ferry::sdk::json_quote(key) + ",";
                if (!signing.empty()) once += "\"signing_secret\":" + ferry::sdk::json_quote(signing) + ",";
                out.insert(1, once + "\"note\":\"shown once: only its hash is kept\",");
                reply.send(201, out);
              });
        });
    return Status::kContinue;
  }

  // A fresh secret: "fk-" and 48 hex digits from the system's CSPRNG; empty
  // if it cannot draw one.
  static std::string new_secret(const char* prefix = "fk-") {
    unsigned char random[24];
    if (RAND_bytes(random, sizeof random) != 1) return {};
    return prefix + to_hex(random, sizeof random);
  }

  // POST /keys/ID/rotate {"grace_s": 86400}: a new secret for the same key
  // (same id, owner, limits and budgets); the old secret keeps working for
  // the grace period, so clients can move over without a failed request.
  Status rotate(std::string id, const AdminRequest& req, AdminReply reply) {
    for (const auto& [hash, rec] : config_keys_)
      if (rec.id == id) {
        reply.error(409, "config_key", "key " + id + " is defined in the TOML: rotate it there");
        return Status::kContinue;
      }
    auto body = OwnedJson::parse(req.body.empty() ? std::string_view("{}") : req.body);
    int64_t grace = 86'400;
    if (body && body->json().has("/grace_s")) {
      auto g = body->json().number("/grace_s");
      if (!g || !(*g >= 0) || *g > 30 * 86'400) {
        reply.error(400, "invalid_grace", "grace_s must be a number of seconds from 0 to 2592000 (30 days)");
        return Status::kContinue;
      }
      grace = static_cast<int64_t>(*g);
    } else if (!body || body->json().type() != FERRY_JSON_OBJECT) {
      reply.error(400, "invalid_json", "the body must be a JSON object: {\"grace_s\": 86400}");
      return Status::kContinue;
    }
    std::string key = new_secret();
    if (key.empty()) {
      reply.error(500, "no_randomness", "could not draw a random key");
      return Status::kContinue;
    }
    ferry::sdk::state_call(StateOp::get("id:" + id), [this, reply, id, key, grace](const StateResult& r) {
      if (r.not_found()) return reply.error(404, "unknown_key", "no key with id " + id);
      if (!r.ok()) return reply.error(503, "state_unavailable", "the state backend cannot be reached");
      std::string old_hash(r.data);
      ferry::sdk::state_call(StateOp::get("key:" + old_hash), [this, reply, id, key, grace,
                                                               old_hash](const StateResult& r) {
        std::optional<KeyRecord> old;
        if (r.ok()) old = KeyRecord::from_json(r.data);
        if (!old) return reply.error(404, "unknown_key", "no key with id " + id);
        if (old->revoked)
          return reply.error(409, "revoked_api_key", "key " + id + " is revoked: create a new one");
        KeyRecord fresh = *old;
        fresh.previous = old_hash;
        std::string new_hash = sha256_hex(key);
        int64_t until = now_s() + grace;
        old->expires = old->expires ? std::min(old->expires, until) : until;
        old->expires = std::max<int64_t>(old->expires, 1);
        // The new record first, then the old one's expiry, then the id: a
        // failure on the way leaves the old key working, never none.
        auto unavailable = [reply] {
          reply.error(503, "state_unavailable", "the state backend cannot be reached");
        };
        std::string old_record = old->to_json(true);
        int64_t previous_expires = old->expires;
        ferry::sdk::state_call(
            StateOp::set("key:" + new_hash, fresh.to_json(true)), [=, this](const StateResult& r) {
              if (!r.ok()) return unavailable();
              ferry::sdk::state_call(StateOp::set("key:" + old_hash, old_record), [=, this](
                                                                                      const StateResult& r) {
                if (!r.ok()) return unavailable();
                ferry::sdk::state_call(StateOp::set("id:" + id, new_hash), [=, this](const StateResult& r) {
                  if (!r.ok()) return unavailable();
                  forget(old_hash);
                  std::string out = fresh.to_json();
                  out.insert(1, "\"key\":" + ferry::sdk::json_quote(key) +
                                    ",\"note\":\"shown once: only its hash is kept\",\"previous_expires\":" +
                                    std::to_string(previous_expires) + ",");
                  reply.send(201, out);
                });
              });
            });
      });
    });
    return Status::kContinue;
  }

  Status revoke(std::string id, AdminReply reply) {
    for (const auto& [hash, rec] : config_keys_)
      if (rec.id == id) {
        reply.error(409, "config_key", "key " + id + " is defined in the TOML: remove it there");
        return Status::kContinue;
      }
    ferry::sdk::state_call(StateOp::get("id:" + id), [this, reply, id](const StateResult& r) {
      if (r.not_found()) return reply.error(404, "unknown_key", "no key with id " + id);
      if (!r.ok()) return reply.error(503, "state_unavailable", "the state backend cannot be reached");
      std::string hash(r.data);
      ferry::sdk::state_call(StateOp::get("key:" + hash), [this, reply, id, hash](const StateResult& r) {
        std::optional<KeyRecord> rec;
        if (r.ok()) rec = KeyRecord::from_json(r.data);
        if (!rec) return reply.error(404, "unknown_key", "no key with id " + id);
        rec->revoked = true;
        std::string stored = rec->to_json(true);
        std::string record = rec->to_json();
        std::string previous = rec->previous;
        ferry::sdk::state_call(
            StateOp::set("key:" + hash, stored), [this, reply, hash, record, previous](const StateResult& r) {
              if (!r.ok())
                return reply.error(503, "state_unavailable", "the state backend cannot be reached");
              forget(hash);
              if (previous.empty()) return reply.send(200, record);
              // A secret still in its grace period after a rotation goes too.
              revoke_hash(previous, [reply, record](bool) { reply.send(200, record); });
            });
      });
    });
    return Status::kContinue;
  }

  // Marks the record stored under `hash` revoked; done(false) if it could not.
  void revoke_hash(const std::string& hash, std::function<void(bool)> done) {
    ferry::sdk::state_call(StateOp::get("key:" + hash), [this, hash, done](const StateResult& r) {
      std::optional<KeyRecord> rec;
      if (r.ok()) rec = KeyRecord::from_json(r.data);
      if (!rec) return done(false);
      rec->revoked = true;
      ferry::sdk::state_call(StateOp::set("key:" + hash, rec->to_json(true)),
                             [this, hash, done](const StateResult& r) {
                               forget(hash);
                               done(r.ok());
                             });
    });
  }

  bool admin_keys_ = true;
  uint64_t cache_ns_ = 0;
  int64_t window_s_ = 300;
  std::map<std::string, KeyRecord> config_keys_;  // by SHA-256
  std::mutex mu_;
  std::map<std::string, std::pair<KeyRecord, uint64_t>> cache_;  // hash -> record (id empty: unknown), when
};

}  // namespace

FERRY_MIDDLEWARE_PLUGIN(Auth, "auth", "1.0.0")
