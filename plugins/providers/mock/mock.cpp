// mock: a provider that answers without any network, deterministically, so
// that ferryd runs with no API key and tests and benchmarks have a stable
// upstream inside the process.
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Config;
using ferry::sdk::Context;
using ferry::sdk::Json;
using ferry::sdk::JsonWriter;
using ferry::sdk::Sink;
using ferry::sdk::Status;

struct MockConfig {
  std::string reply_prefix;
  uint64_t latency_ns = 0;
  // Per upstream model, overriding latency_ns: one provider serving a fast and
  // a slow model, as real ones do.
  std::map<std::string, uint64_t, std::less<>> model_latency_ns;
  uint64_t token_interval_ns = 0;  // 0: no pacing
  int error_status = 0;
  double error_rate = 0;
  std::string error_message;
};

// The text of a message's content: a string, or the text parts of an array.
std::string content_text(const Json& req, const std::string& msg) {
  if (auto s = req.string(msg + "/content")) return std::string(*s);
  std::string out;
  for (size_t i = 0, n = req.size(msg + "/content"); i < n; ++i) {
    std::string part = msg + "/content/" + std::to_string(i);
    if (req.string(part + "/type") != std::optional<std::string_view>("text")) continue;
    if (auto t = req.string(part + "/text")) out.append(*t);
  }
  return out;
}

int64_t count_words(std::string_view s) {
  int64_t n = 0;
  bool in_word = false;
  for (char c : s) {
    bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

// The answer split at word boundaries: each piece after the first carries its
// leading space, so the pieces concatenate to the whole text.
std::vector<std::string> pieces_of(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 1; i <= text.size(); ++i) {
    if (i == text.size() || (text[i] == ' ' && text[i - 1] != ' ')) {
      out.push_back(text.substr(start, i - start));
      start = i;
    }
  }
  return out;
}

struct Answer {
  std::string id;
  int64_t created = 0;
  std::string model;
  std::string text;
  std::string finish_reason = "stop";
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

void write_usage(JsonWriter& w, const Answer& a) {
  w.key("usage").begin_object();
  w.key("prompt_tokens").value(a.prompt_tokens);
  w.key("completion_tokens").value(a.completion_tokens);
  w.key("total_tokens").value(a.prompt_tokens + a.completion_tokens);
  w.end_object();
}

std::string completion_json(const Answer& a) {
  JsonWriter w;
  w.begin_object();
  w.key("id").value(a.id).key("object").value("chat.completion").key("created").value(a.created);
  w.key("model").value(a.model);
  w.key("choices").begin_array().begin_object();
  w.key("index").value(0);
  w.key("message").begin_object().key("role").value("assistant").key("content").value(a.text).end_object();
  w.key("finish_reason").value(a.finish_reason);
  w.end_object().end_array();
  write_usage(w, a);
  w.end_object();
  return w.take();
}

std::string chunk_json(const Answer& a, std::string_view role, std::string_view content,
                       std::string_view finish) {
  JsonWriter w;
  w.begin_object();
  w.key("id").value(a.id).key("object").value("chat.completion.chunk").key("created").value(a.created);
  w.key("model").value(a.model);
  w.key("choices").begin_array().begin_object();
  w.key("index").value(0);
  w.key("delta").begin_object();
  if (!role.empty()) w.key("role").value(role);
  if (finish.empty()) w.key("content").value(content);
  w.end_object();
  w.key("finish_reason");
  if (finish.empty())
    w.null();
  else
    w.value(finish);
  w.end_object().end_array();
  w.end_object();
  return w.take();
}

std::string usage_chunk_json(const Answer& a) {
  JsonWriter w;
  w.begin_object();
  w.key("id").value(a.id).key("object").value("chat.completion.chunk").key("created").value(a.created);
  w.key("model").value(a.model);
  w.key("choices").begin_array().end_array();
  write_usage(w, a);
  w.end_object();
  return w.take();
}

// The chunks of a streamed answer, delivered one per tick of the host's timer.
struct Emission {
  Sink sink;
  std::vector<std::string> chunks;
  size_t next = 0;
  uint64_t interval_ns = 0;
};

void emit_next(Context ctx, std::shared_ptr<Emission> e) {
  while (e->next < e->chunks.size()) {
    e->sink.chunk(e->chunks[e->next++]);
    if (e->interval_ns && e->next < e->chunks.size()) {
      ctx.schedule(e->interval_ns, [ctx, e](bool cancelled) {
        if (!cancelled) emit_next(ctx, e);
      });
      return;
    }
  }
  e->sink.done();
}

// A deterministic embedding: each lower-cased word lands in one of `dims`
// buckets with a sign, and the vector is normalised. Texts that share most of
// their words come out close (cosine near 1), unrelated ones near 0, which is
// what semantic-cache tests need.
std::vector<double> embed(std::string_view text, size_t dims) {
  std::vector<double> v(dims, 0.0);
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    uint64_t h = ferry::sdk::stable_hash(word);
    v[h % dims] += (h >> 63) ? 1.0 : -1.0;
    word.clear();
  };
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else
      flush();
  }
  flush();
  double norm = 0;
  for (double x : v) norm += x * x;
  if (norm > 0)
    for (double& x : v) x /= std::sqrt(norm);
  return v;
}

// encoding_format "base64": the float32 values, little-endian, in base64 (what
// the official OpenAI clients ask for by default).
std::string base64_floats(const std::vector<double>& v) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  for (double d : v) {
    float f = static_cast<float>(d);
    unsigned char b[4];
    std::memcpy(b, &f, 4);  // x86-64 and aarch64 are little-endian
    bytes.append(reinterpret_cast<const char*>(b), 4);
  }
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) n |= static_cast<unsigned char>(bytes[i + 2]);
    out += abc[(n >> 18) & 63];
    out += abc[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? abc[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? abc[n & 63] : '=';
  }
  return out;
}

class Mock final : public ferry::sdk::Provider {
 public:
  explicit Mock(Config& c) {
    c.reject_unknown_keys({"reply_prefix", "latency_ms", "model_latency_ms", "tokens_per_second",
                           "error_status", "error_rate", "error_message"});
    cfg_.reply_prefix = c.string("/reply_prefix", "Ferry mock reply:");
    cfg_.latency_ns = static_cast<uint64_t>(c.integer("/latency_ms", 0, 0, 3'600'000)) * 1'000'000;
    auto type = c.json().type("/model_latency_ms");
    if (type != FERRY_JSON_MISSING && type != FERRY_JSON_OBJECT)
      c.error("/model_latency_ms", "expected a table of model name to milliseconds");
    else
      for (const auto& model : c.keys("/model_latency_ms")) {
        std::string pointer = "/model_latency_ms/";
        for (char ch : model)
          pointer += ch == '~' ? "~0" : ch == '/' ? "~1" : std::string(1, ch);  // RFC 6901
        cfg_.model_latency_ns[model] = static_cast<uint64_t>(c.integer(pointer, 0, 0, 3'600'000)) * 1'000'000;
      }
    double tps = c.number("/tokens_per_second", 0, 0, 1e9);
    cfg_.token_interval_ns = tps > 0 ? static_cast<uint64_t>(1e9 / tps) : 0;
    cfg_.error_status = static_cast<int>(c.integer("/error_status", 0, 0, 599));
    if (cfg_.error_status != 0 && cfg_.error_status < 400)
      c.error("/error_status", "must be 0 (off) or 400..599");
    cfg_.error_rate = c.number("/error_rate", cfg_.error_status ? 1.0 : 0.0, 0, 1);
    cfg_.error_message = c.string("/error_message", "injected failure");
  }

  // POST /v1/embeddings: one vector per input string; tokens are words.
  Status serve_embeddings(const Json& req, Sink& sink) {
    std::vector<std::string> inputs;
    if (auto one = req.string("/input"))
      inputs.emplace_back(*one);
    else
      for (size_t i = 0, n = req.size("/input"); i < n; ++i)
        inputs.emplace_back(req.string("/input/" + std::to_string(i)).value_or(""));
    size_t dims = static_cast<size_t>(req.integer("/dimensions").value_or(64));
    if (dims == 0 || dims > 4096)
      return sink.error(400, "invalid_request_error", "dimensions must be 1..4096");
    bool base64 = req.string("/encoding_format") == std::optional<std::string_view>("base64");
    JsonWriter w;
    w.begin_object().key("object").value("list").key("data").begin_array();
    int64_t tokens = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      w.begin_object().key("object").value("embedding").key("index").value(static_cast<int64_t>(i));
      auto vector = embed(inputs[i], dims);
      if (base64) {
        w.key("embedding").value(base64_floats(vector));
      } else {
        w.key("embedding").begin_array();
        for (double x : vector) w.value(x);
        w.end_array();
      }
      w.end_object();
      tokens += count_words(inputs[i]);
    }
    w.end_array().key("model").value(req.string("/model").value_or("ferry-mock"));
    w.key("usage").begin_object().key("prompt_tokens").value(tokens).key("total_tokens").value(tokens);
    w.end_object().end_object();
    return sink.response(w.str());
  }

  Status serve(Context& ctx, const Json& req, Sink& sink) override {
    if (ctx.embeddings()) return serve_embeddings(req, sink);
    uint64_t n = counter_.fetch_add(1, std::memory_order_relaxed);
    // Every 1/rate-th request fails, in a fixed pattern, so tests can count.
    if (cfg_.error_status &&
        static_cast<uint64_t>((n + 1) * cfg_.error_rate) > static_cast<uint64_t>(n * cfg_.error_rate)) {
      Sink s = sink;
      std::string message =
          cfg_.error_message + " (mock error_status " + std::to_string(cfg_.error_status) + ")";
      int status = cfg_.error_status;
      auto fail = [s, status, message]() mutable {
        s.error(status, status == 429 ? "rate_limit_error" : "server_error", message);
      };
      if (!cfg_.latency_ns) {
        fail();
      } else {
        ctx.schedule(cfg_.latency_ns, [fail](bool cancelled) mutable {
          if (!cancelled) fail();
        });
      }
      return Status::kContinue;
    }

    Answer a;
    a.id = "chatcmpl-mock-" + std::to_string(n);
    a.created = static_cast<int64_t>(ferry::sdk::host().clock_ns(FERRY_CLOCK_REALTIME) / 1'000'000'000);
    a.model = std::string(req.string("/model").value_or("ferry-mock"));
    std::string last_user;
    size_t messages = req.size("/messages");
    for (size_t i = 0; i < messages; ++i) {
      std::string m = "/messages/" + std::to_string(i);
      std::string text = content_text(req, m);
      a.prompt_tokens += count_words(text);
      if (req.string(m + "/role") == std::optional<std::string_view>("user")) last_user = std::move(text);
    }
    a.text = cfg_.reply_prefix + (last_user.empty() ? "" : " " + last_user);
    std::vector<std::string> words = pieces_of(a.text);
    // max_completion_tokens first, as the anthropic adapter reads them: max_tokens is deprecated.
    if (auto max = req.integer("/max_completion_tokens").value_or(req.integer("/max_tokens").value_or(0));
        max > 0 && static_cast<size_t>(max) < words.size()) {
      words.resize(static_cast<size_t>(max));
      a.text.clear();
      for (const auto& w : words) a.text += w;
      a.finish_reason = "length";
    }
    a.completion_tokens = static_cast<int64_t>(words.size());

    auto e = std::make_shared<Emission>(Emission{sink, {}, 0, cfg_.token_interval_ns});
    if (ctx.streaming()) {
      e->chunks.reserve(words.size() + 3);
      e->chunks.push_back(chunk_json(a, "assistant", "", ""));
      for (const auto& w : words) e->chunks.push_back(chunk_json(a, "", w, ""));
      e->chunks.push_back(chunk_json(a, "", "", a.finish_reason));
      if (req.boolean("/stream_options/include_usage").value_or(false))
        e->chunks.push_back(usage_chunk_json(a));
    }
    auto start = [ctx, e, a, stream = ctx.streaming()]() mutable {
      if (stream)
        emit_next(ctx, e);
      else
        e->sink.response(completion_json(a));
    };
    // A whole answer takes as long as its stream would have.
    auto latency = cfg_.model_latency_ns.find(a.model);
    uint64_t delay = (latency == cfg_.model_latency_ns.end() ? cfg_.latency_ns : latency->second) +
                     (ctx.streaming() ? 0 : cfg_.token_interval_ns * words.size());
    if (!delay) {
      start();
    } else {
      ctx.schedule(delay, [start](bool cancelled) mutable {
        if (!cancelled) start();
      });
    }
    return Status::kContinue;
  }

 private:
  MockConfig cfg_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace

FERRY_PROVIDER_PLUGIN(Mock, "mock", "1.0.0")
