// cache: exact-match answers. The key is the canonical request: the model and
// every parameter that changes the output (messages, temperature, tools, ...),
// not those that do not (stream, user, metadata). A hit is answered without
// any upstream call; a streaming client gets it replayed as a stream (the
// host does that for any 200 a middleware answers). Streamed answers are
// stored too: their chunks are assembled into one chat.completion.
//
// Entries live in this process (LRU, bounded by entries and bytes, TTL) and,
// with shared = true, also in the shared state so that every instance on one
// Redis serves what any of them stored.
//
// Every entry belongs to a principal (`scope`: the API key by default, or the
// user, the team, or everyone): one tenant's answers are never served to
// another, and whether another tenant asked the same is not observable.
#include <cmath>
#include <cstdio>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Context;
using ferry::sdk::Json;
using ferry::sdk::JsonWriter;
using ferry::sdk::StateOp;
using ferry::sdk::StateResult;
using ferry::sdk::Status;

// Request members that change the answer, in a fixed order.
// clang-format off
constexpr const char* kKeyFields[] = {
    "model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "tools",
    "tool_choice", "response_format", "seed", "n", "presence_penalty", "frequency_penalty", "logit_bias",
    "logprobs", "top_logprobs", "functions", "function_call", "reasoning_effort", "parallel_tool_calls",
    "modalities",
    // embeddings (1.2)
    "input", "dimensions", "encoding_format"};
// clang-format on

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

class Lru {
 public:
  Lru(size_t max_entries, size_t max_bytes) : max_entries_(max_entries), max_bytes_(max_bytes) {}

  // The body stored for key and canon (a different canon under the same key
  // is a hash collision: a miss).
  std::optional<std::string> get(const std::string& key, const std::string& canon, uint64_t now) {
    std::lock_guard lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    auto& e = *it->second;
    if (e.expires <= now || e.canon != canon) {
      drop(it);
      return std::nullopt;
    }
    order_.splice(order_.begin(), order_, it->second);
    return e.body;
  }

  void put(const std::string& key, std::string canon, std::string body, uint64_t expires) {
    size_t bytes = key.size() + canon.size() + body.size() + 64;
    if (bytes > max_bytes_) return;
    std::lock_guard lock(mu_);
    if (auto it = index_.find(key); it != index_.end()) drop(it);
    order_.push_front({key, std::move(canon), std::move(body), expires, bytes});
    index_[key] = order_.begin();
    bytes_ += bytes;
    while (index_.size() > max_entries_ || bytes_ > max_bytes_) {
      ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_cache_evictions_total", 1);
      drop(index_.find(order_.back().key));
    }
  }

 private:
  struct Entry {
    std::string key, canon, body;
    uint64_t expires;
    size_t bytes;
  };
  using Index = std::unordered_map<std::string, std::list<Entry>::iterator>;
  void drop(Index::iterator it) {
    bytes_ -= it->second->bytes;
    order_.erase(it->second);
    index_.erase(it);
  }

  const size_t max_entries_, max_bytes_;
  std::mutex mu_;
  std::list<Entry> order_;  // most recently used first
  Index index_;
  size_t bytes_ = 0;
};

// Answers by meaning: each stored chat answer with the embedding of its
// request's text, searched by cosine similarity among entries of the same
// scope (the same model and output-changing parameters). Linear scan: a
// few thousand entries of a few hundred dimensions take well under a
// millisecond; beyond, an ANN index would pay.
class SemanticIndex {
 public:
  explicit SemanticIndex(size_t max_entries) : max_entries_(max_entries) {}

  struct Found {
    std::string body;
    double similarity;
  };
  std::optional<Found> nearest(const std::string& scope, const std::vector<float>& v, double threshold,
                               uint64_t now) {
    std::lock_guard lock(mu_);
    std::optional<Found> best;
    for (const auto& e : entries_) {
      if (e.expires <= now || e.scope != scope || e.v.size() != v.size()) continue;
      double dot = 0, a = 0, b = 0;
      for (size_t i = 0; i < v.size(); ++i) {
        dot += static_cast<double>(v[i]) * e.v[i];
        a += static_cast<double>(v[i]) * v[i];
        b += static_cast<double>(e.v[i]) * e.v[i];
      }
      double sim = a > 0 && b > 0 ? dot / std::sqrt(a * b) : 0;
      if (sim >= threshold && (!best || sim > best->similarity)) best = Found{e.body, sim};
    }
    return best;
  }
  void add(std::string scope, std::vector<float> v, std::string body, uint64_t expires) {
    std::lock_guard lock(mu_);
    entries_.push_back({std::move(scope), std::move(v), std::move(body), expires});
    while (entries_.size() > max_entries_) entries_.pop_front();  // oldest first
  }

 private:
  struct Entry {
    std::string scope;
    std::vector<float> v;
    std::string body;
    uint64_t expires;
  };
  const size_t max_entries_;
  std::mutex mu_;
  std::deque<Entry> entries_;
};

struct SemanticConfig {
  std::string model;  // the embeddings model (a pipeline of this gateway serves it)
  double threshold = 0.95;
};

class Cache;

// Per request: the key, and a streamed answer being assembled.
class Lookup final : public ferry::sdk::Filter {
 public:
  explicit Lookup(Cache& owner) : owner_(owner) {}
  Status on_request(Context& ctx, Json& req) override;
  Status on_response(Context& ctx, Json& resp) override;
  Status on_chunk(Context& ctx, Json& chunk) override;
  void on_complete(Context& ctx, const ferry_request_summary& s) override;

 private:
  Status hit(Context& ctx, const std::string& body);
  std::string principal(Context& ctx, const Json& req) const;
  Status miss(Context& ctx, const Json& req);
  Status semantic_answer(Context& ctx, int status, std::string_view body);
  void store(std::string body);

  struct ToolCall {
    std::string id, name, arguments;
  };
  struct Choice {
    std::string role = "assistant", content, finish_reason;
    bool has_content = false;
    std::map<int64_t, ToolCall> tool_calls;
  };

  Cache& owner_;
  std::string key_, canon_;
  std::string scope_;             // canon_ without the messages: where semantic matches may come from
  std::vector<float> embedding_;  // of this request's text, when semantic
  bool store_ = false;            // a miss whose answer should be kept
  std::string id_, model_;
  int64_t created_ = 0;
  std::map<int64_t, Choice> choices_;
};

class Cache final : public ferry::sdk::Middleware {
 public:
  // The hooks the host calls are the ones Lookup overrides.
  using filter_type = Lookup;
  explicit Cache(ferry::sdk::Config& c)
      : ttl_ns_(static_cast<uint64_t>(c.integer("/ttl_s", 3600, 1, 365 * 86400)) * 1'000'000'000),
        shared_(c.json().boolean("/shared").value_or(false)),
        lru_(static_cast<size_t>(c.integer("/max_entries", 10'000, 1, 100'000'000)),
             static_cast<size_t>(c.integer("/max_bytes", 64 << 20, 1024, int64_t{1} << 40))) {
    c.reject_unknown_keys({"ttl_s", "max_entries", "max_bytes", "shared", "semantic", "scope"});
    scope_ = c.string("/scope", "key");
    if (scope_ != "key" && scope_ != "user" && scope_ != "team" && scope_ != "global")
      c.error("/scope",
              "must be \"key\", \"user\", \"team\" or \"global\" (whose answers a hit may serve), not \"" +
                  scope_ + "\"");
    if (c.json().has("/shared") && c.json().type("/shared") != FERRY_JSON_BOOL)
      c.error("/shared", "must be true or false");
    if (c.json().has("/semantic")) {
      for (const auto& k : c.keys("/semantic"))
        if (k != "model" && k != "threshold" && k != "max_entries")
          c.error("/semantic/" + k, "unknown key '" + k + "' (expected model, threshold, max_entries)");
      SemanticConfig sc;
      sc.model = c.required_string("/semantic/model");
      sc.threshold = c.number("/semantic/threshold", 0.95, 0.5, 1.0);
      semantic_ = sc;
      index_ = std::make_unique<SemanticIndex>(
          static_cast<size_t>(c.integer("/semantic/max_entries", 5000, 1, 10'000'000)));
    }
  }
  std::unique_ptr<ferry::sdk::Filter> new_filter(Context&) override {
    return std::make_unique<Lookup>(*this);
  }

  uint64_t ttl_ns() const { return ttl_ns_; }
  const std::string& scope() const { return scope_; }
  bool shared() const { return shared_; }
  Lru& lru() { return lru_; }
  const std::optional<SemanticConfig>& semantic() const { return semantic_; }
  SemanticIndex& index() { return *index_; }

 private:
  const uint64_t ttl_ns_;
  const bool shared_;
  std::string scope_;
  Lru lru_;
  std::optional<SemanticConfig> semantic_;
  std::unique_ptr<SemanticIndex> index_;
};

// Whose entries this request may see and add to. A user or team scope falls
// back to the key for a request without one (two team-less keys share
// nothing); without any credential everyone is one anonymous principal.
std::string Lookup::principal(Context& ctx, const Json& req) const {
  if (owner_.scope() == "global") return "*";
  std::string who;
  if (owner_.scope() != "key") who = ferry::sdk::requester(ctx, req, owner_.scope());
  if (!who.empty()) return owner_.scope() + ":" + who;
  who = ferry::sdk::requester(ctx, req, "key");
  return who.empty() ? "anonymous" : "key:" + who;
}

Status Lookup::on_request(Context& ctx, Json& req) {
  std::string_view control = ctx.header("cache-control").value_or("");
  bool no_store = control.find("no-store") != std::string_view::npos;
  bool no_cache = no_store || control.find("no-cache") != std::string_view::npos;
  // One pass: the canonical request, and for a semantic cache the same
  // without the text (the scope semantic matches may come from).
  const bool semantic = owner_.semantic().has_value();
  JsonWriter w, scope;
  std::string who = principal(ctx, req);
  w.begin_object().key("$principal").value(who).key("$operation").value(ctx.operation());
  if (semantic) scope.begin_object().key("$principal").value(who).key("$operation").value(ctx.operation());
  for (const char* field : kKeyFields) {
    auto raw = req.raw(std::string("/") + field);
    if (!raw) continue;
    w.key(field).raw(*raw);
    if (semantic && std::string_view(field) != "messages" && std::string_view(field) != "input")
      scope.key(field).raw(*raw);
  }
  w.end_object();
  canon_ = w.take();
  if (semantic) scope_ = scope.end_object().take();
  key_ = hex64(ferry::sdk::stable_hash(canon_)) + hex64(ferry::sdk::stable_hash(canon_ + "\x01"));
  store_ = !no_store;
  if (no_cache) {
    ctx.set_response_header("x-ferry-cache", "bypass");
    ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_cache_bypass_total", 1);
    return Status::kContinue;
  }
  if (auto body = owner_.lru().get(key_, canon_, ferry::sdk::monotonic_ns())) return hit(ctx, *body);
  if (!owner_.shared()) return miss(ctx, req);
  return ctx.state_then(StateOp::get("c:" + key_), [this, req](Context& ctx, const StateResult& r) {
    if (r.ok()) {
      // Stored as "canon\nbody": the canon guards against a hash collision.
      auto nl = r.data.find('\n');
      if (nl != std::string_view::npos && r.data.substr(0, nl) == canon_) {
        std::string body(r.data.substr(nl + 1));
        owner_.lru().put(key_, canon_, body, ferry::sdk::monotonic_ns() + owner_.ttl_ns());
        return hit(ctx, body);
      }
    }
    // Not there, or the state backend is down: a cache never fails a request.
    return miss(ctx, req);
  });
}

// No exact match. With a semantic cache, the request's text is embedded
// through this gateway's own embeddings pipeline and looked up by meaning.
Status Lookup::miss(Context& ctx, const Json& req) {
  const auto& sem = owner_.semantic();
  if (sem && !ctx.embeddings()) {
    JsonWriter body;
    body.begin_object().key("model").value(sem->model).key("input").value(ferry::sdk::request_text(req));
    body.key("encoding_format").value("float").end_object();
    Status s =
        ctx.call_then("embeddings", body.str(), [this](Context& ctx, int status, std::string_view answer) {
          return semantic_answer(ctx, status, answer);
        });
    if (s == Status::kPause) return s;
    ctx.log(ferry::sdk::LogLevel::kWarn,
            "cache: cannot ask for an embedding (status " + std::to_string(static_cast<int>(s)) + ")");
  }
  ctx.set_response_header("x-ferry-cache", "miss");
  ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_cache_misses_total", 1);
  return Status::kContinue;
}

Status Lookup::semantic_answer(Context& ctx, int status, std::string_view answer) {
  auto doc = status == 200 ? ctx.parse(answer) : std::nullopt;
  size_t n = doc ? doc->size("/data/0/embedding") : 0;
  if (n == 0) {
    ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_cache_semantic_errors_total", 1);
    ctx.log(ferry::sdk::LogLevel::kWarn, "cache: embeddings from '" + owner_.semantic()->model +
                                             "' failed (HTTP " + std::to_string(status) +
                                             "): " + ferry::sdk::excerpt(answer));
  } else {
    embedding_.reserve(n);
    for (size_t i = 0; i < n; ++i)
      embedding_.push_back(
          static_cast<float>(doc->number("/data/0/embedding/" + std::to_string(i)).value_or(0)));
    auto found =
        owner_.index().nearest(scope_, embedding_, owner_.semantic()->threshold, ferry::sdk::monotonic_ns());
    if (found) {
      char sim[32];
      std::snprintf(sim, sizeof sim, "semantic; similarity=%.4f", found->similarity);
      ctx.set_response_header("x-ferry-cache-match", sim);
      ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_cache_semantic_hits_total", 1);
      return hit(ctx, found->body);
    }
  }
  ctx.set_response_header("x-ferry-cache", "miss");
  ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_cache_misses_total", 1);
  return Status::kContinue;
}

Status Lookup::hit(Context& ctx, const std::string& body) {
  store_ = false;
  ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_cache_hits_total", 1);
  ctx.set_response_header("x-ferry-cache", "hit");
  return ctx.respond(200, body);
}

void Lookup::store(std::string body) {
  ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_cache_stores_total", 1);
  if (owner_.shared())
    ferry::sdk::state_call(StateOp::set("c:" + key_, canon_ + "\n" + body, owner_.ttl_ns() / 1'000'000),
                           nullptr);
  if (!embedding_.empty())
    owner_.index().add(scope_, std::move(embedding_), body, ferry::sdk::monotonic_ns() + owner_.ttl_ns());
  owner_.lru().put(key_, canon_, std::move(body), ferry::sdk::monotonic_ns() + owner_.ttl_ns());
}

Status Lookup::on_response(Context&, Json& resp) {
  if (!store_ || (resp.size("/choices") == 0 && resp.size("/data") == 0)) return Status::kContinue;
  store(std::string(resp.dump()));
  store_ = false;
  return Status::kContinue;
}

// Assembles the streamed answer, chunk by chunk (deltas merge per choice, and
// tool calls per index), to store it once the stream has ended well.
Status Lookup::on_chunk(Context&, Json& chunk) {
  if (!store_) return Status::kContinue;
  if (id_.empty()) {
    id_ = std::string(chunk.string("/id").value_or(""));
    model_ = std::string(chunk.string("/model").value_or(""));
    created_ = chunk.integer("/created").value_or(0);
  }
  for (size_t i = 0, n = chunk.size("/choices"); i < n; ++i) {
    std::string at = "/choices/" + std::to_string(i);
    Choice& c = choices_[chunk.integer(at + "/index").value_or(0)];
    if (auto role = chunk.string(at + "/delta/role")) c.role = *role;
    if (auto text = chunk.string(at + "/delta/content")) {
      c.content += *text;
      c.has_content = true;
    }
    if (auto reason = chunk.string(at + "/finish_reason")) c.finish_reason = *reason;
    for (size_t t = 0, m = chunk.size(at + "/delta/tool_calls"); t < m; ++t) {
      std::string tc = at + "/delta/tool_calls/" + std::to_string(t);
      ToolCall& call = c.tool_calls[chunk.integer(tc + "/index").value_or(static_cast<int64_t>(t))];
      if (auto id = chunk.string(tc + "/id")) call.id = *id;
      if (auto name = chunk.string(tc + "/function/name")) call.name += *name;
      if (auto args = chunk.string(tc + "/function/arguments")) call.arguments += *args;
    }
  }
  return Status::kContinue;
}

void Lookup::on_complete(Context&, const ferry_request_summary& s) {
  if (!store_ || !s.stream || s.status != 200 || s.error.len != 0 || choices_.empty()) return;
  for (const auto& [index, c] : choices_)
    if (c.finish_reason.empty()) return;  // cut off: never store half an answer
  JsonWriter w;
  w.begin_object().key("id").value(id_).key("object").value("chat.completion");
  w.key("created").value(created_).key("model").value(model_).key("choices").begin_array();
  for (const auto& [index, c] : choices_) {
    w.begin_object().key("index").value(index).key("message").begin_object().key("role").value(c.role);
    w.key("content");
    if (c.has_content || c.tool_calls.empty())
      w.value(c.content);
    else
      w.null();
    if (!c.tool_calls.empty()) {
      w.key("tool_calls").begin_array();
      for (const auto& [i, call] : c.tool_calls) {
        w.begin_object().key("id").value(call.id).key("type").value("function");
        w.key("function").begin_object().key("name").value(call.name).key("arguments").value(call.arguments);
        w.end_object().end_object();
      }
      w.end_array();
    }
    w.end_object().key("finish_reason").value(c.finish_reason).end_object();
  }
  w.end_array();
  if (s.prompt_tokens >= 0 && s.completion_tokens >= 0) {
    w.key("usage").begin_object().key("prompt_tokens").value(s.prompt_tokens);
    w.key("completion_tokens").value(s.completion_tokens);
    w.key("total_tokens").value(s.prompt_tokens + s.completion_tokens).end_object();
  }
  w.end_object();
  store(w.str());
}

}  // namespace

FERRY_MIDDLEWARE_PLUGIN(Cache, "cache", "1.0.0")
