// plugin.hpp - header-only C++20 wrapper over ferry.h.
//
// A plugin author subclasses ferry::sdk::Provider, ::Router, ::Middleware or
// (ABI 1.3, ferry/sdk/frontend.hpp) ::Frontend,
// gives it a constructor taking `ferry::sdk::Config&`, overrides the hooks it
// needs and writes one export macro:
//
//   class Shout : public ferry::sdk::Middleware {
//    public:
//     explicit Shout(ferry::sdk::Config& config) {}
//     ferry::sdk::Status on_request(ferry::sdk::Context& ctx, ferry::sdk::Json& request) override;
//   };
//   FERRY_MIDDLEWARE_PLUGIN(Shout, "shout", "1.0.0")
//
// The generated trampolines catch every exception, so none crosses the C ABI
// (sdk/ABI.md R11): a throwing hook becomes FERRY_ERR_INTERNAL and a log line.
// Everything here is a thin, non-owning view over host handles; lifetimes are
// those of ferry.h.
#ifndef FERRY_PLUGIN_HPP
#define FERRY_PLUGIN_HPP

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ferry/ferry.h"

// The wrapper owns the layout of the callback argument (schedule, state_call).
struct ferry_task {
  std::function<void(bool cancelled)> fn;
  std::function<void(const ferry_state_result&)> state_fn;
  std::function<void(int status, std::string_view body, bool cancelled)> call_fn;
  // The instance that made the call (1.3): current again when the callback
  // runs, so that what it logs and stores stays that instance's.
  ferry_plugin_handle* self = nullptr;
};

namespace ferry::sdk {

enum class Status : ferry_status {
  kContinue = FERRY_CONTINUE,
  kRespond = FERRY_RESPOND,
  kPause = FERRY_PAUSE,
  kSkip = FERRY_SKIP,  // on_attempt: not this provider (1.2)
  kInvalidArgument = FERRY_ERR_INVALID_ARGUMENT,
  kNotFound = FERRY_ERR_NOT_FOUND,
  kTypeMismatch = FERRY_ERR_TYPE_MISMATCH,
  kParse = FERRY_ERR_PARSE,
  kUnsupported = FERRY_ERR_UNSUPPORTED,
  kConfig = FERRY_ERR_CONFIG,
  kBadState = FERRY_ERR_BAD_STATE,
  kUpstream = FERRY_ERR_UPSTREAM,
  kUnavailable = FERRY_ERR_UNAVAILABLE,
  kInternal = FERRY_ERR_INTERNAL,
};
inline constexpr Status kOk = Status::kContinue;

enum class LogLevel : ferry_log_level {
  kTrace = FERRY_LOG_TRACE,
  kDebug = FERRY_LOG_DEBUG,
  kInfo = FERRY_LOG_INFO,
  kWarn = FERRY_LOG_WARN,
  kError = FERRY_LOG_ERROR,
};

inline ferry_view view(std::string_view s) { return ferry_view{s.data(), s.size()}; }
inline std::string_view sv(ferry_view v) {
  return v.ptr ? std::string_view(v.ptr, v.len) : std::string_view();
}

namespace detail {
// Set once by ferry_plugin_negotiate before any other call (ABI.md R1).
inline const ferry_host_api* g_host = nullptr;
inline ferry_plugin_handle* g_self = nullptr;
// The configured instance whose hook runs on this thread (ABI 1.3, R20):
// logs, metrics and state keys are that instance's, not the library's.
inline thread_local ferry_plugin_handle* t_self = nullptr;
inline ferry_plugin_handle* current_self() { return t_self ? t_self : g_self; }

// Makes `self` the current instance while alive.
class SelfScope {
 public:
  explicit SelfScope(ferry_plugin_handle* self) : previous_(t_self) {
    if (self) t_self = self;
  }
  ~SelfScope() { t_self = previous_; }
  SelfScope(const SelfScope&) = delete;
  SelfScope& operator=(const SelfScope&) = delete;

 private:
  ferry_plugin_handle* previous_;
};

// What every configured instance carries: its own handle from the host.
class Identity {
 public:
  ferry_plugin_handle* instance_handle() const { return handle_; }

 private:
  template <class T, class Base>
  friend ferry_status create(const ferry_json* config, ferry_instance** out) noexcept;
  ferry_plugin_handle* handle_ = nullptr;
};
}  // namespace detail

// The host's service table. Valid from negotiation until the plugin unloads.
inline const ferry_host_api& host() { return *detail::g_host; }

inline void log(LogLevel level, std::string_view message, const ferry_ctx* ctx = nullptr) {
  host().log(detail::current_self(), ctx, static_cast<ferry_log_level>(level), view(message));
}

inline void metric(ferry_metric_kind kind, std::string_view name, double value) {
  host().metric(detail::current_self(), kind, view(name), value);
}

inline uint64_t monotonic_ns() { return host().clock_ns(FERRY_CLOCK_MONOTONIC); }

inline std::optional<std::string_view> secret(std::string_view env_name) {
  ferry_view out{};
  if (host().secret_get(view(env_name), &out) != FERRY_OK) return std::nullopt;
  return sv(out);
}

// A fast per-thread random source for routing decisions (splitmix64; not for
// secrets). Each thread starts from its own seed.
inline uint64_t random_u64() {
  thread_local uint64_t state = [] {
    uint64_t s = std::random_device{}();
    return (s << 32) ^ std::random_device{}() ^ reinterpret_cast<uintptr_t>(&s);
  }();
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
// Uniform in [0, 1).
inline double random_unit() { return static_cast<double>(random_u64() >> 11) * 0x1.0p-53; }
// Uniform in [0, n); n > 0.
inline size_t random_below(size_t n) { return static_cast<size_t>(random_unit() * static_cast<double>(n)); }

// FNV-1a: a stable hash for sticky decisions (the same key picks the same
// variant on every ferryd instance and across restarts).
inline uint64_t stable_hash(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// Appends s to out as a quoted JSON string.
inline void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

// The start of `text` on one line, for quoting an upstream's answer in an
// error message without flooding the log.
inline std::string excerpt(std::string_view text, size_t max = 200) {
  std::string out(text.substr(0, max));
  for (auto& c : out)
    if (c == '\n' || c == '\r') c = ' ';
  if (text.size() > max) out += "...";
  return out;
}

inline std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_json_string(out, s);
  return out;
}

// Builds compact JSON text without a JSON library: commas are inserted for you.
//   JsonWriter w; w.begin_object().key("a").value(1).end_object(); w.str() == R"({"a":1})"
class JsonWriter {
 public:
  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }
  JsonWriter& key(std::string_view k) {
    comma();
    append_json_string(out_, k);
    out_.push_back(':');
    after_key_ = true;
    return *this;
  }
  JsonWriter& value(std::string_view s) {
    comma();
    append_json_string(out_, s);
    return *this;
  }
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(bool b) { return raw(b ? "true" : "false"); }
  JsonWriter& value(int64_t n) { return raw(std::to_string(n)); }
  JsonWriter& value(int n) { return value(static_cast<int64_t>(n)); }
  JsonWriter& value(double d) {
    // Shortest text that reads back as the same double; JSON has no NaN/inf.
    if (d != d || d - d != 0) return null();
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
    return raw(std::string_view(buf, static_cast<size_t>(end - buf)));
  }
  JsonWriter& null() { return raw("null"); }
  // Inserts already-serialized JSON as the next value.
  JsonWriter& raw(std::string_view json) {
    comma();
    out_.append(json);
    return *this;
  }
  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  JsonWriter& open(char c) {
    comma();
    out_.push_back(c);
    first_.push_back(true);
    return *this;
  }
  JsonWriter& close(char c) {
    out_.push_back(c);
    if (!first_.empty()) first_.pop_back();
    return *this;
  }
  void comma() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (first_.empty()) return;
    if (!first_.back()) out_.push_back(',');
    first_.back() = false;
  }
  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

// A host JSON document addressed by JSON pointer. Non-owning. Views it returns
// live until the current hook returns or the document changes.
class Json {
 public:
  explicit Json(const ferry_json* doc) : doc_(const_cast<ferry_json*>(doc)) {}

  ferry_json_type type(std::string_view pointer = "") const { return host().json_type(doc_, view(pointer)); }
  bool has(std::string_view pointer) const { return type(pointer) != FERRY_JSON_MISSING; }
  // The document parsed (lazily parsed documents may hold invalid JSON).
  bool valid() const { return type("") != FERRY_JSON_MISSING; }

  std::optional<std::string_view> raw(std::string_view pointer) const {
    ferry_view out{};
    if (host().json_get(doc_, view(pointer), &out) != FERRY_OK) return std::nullopt;
    return sv(out);
  }
  std::optional<std::string_view> string(std::string_view pointer) const {
    ferry_view out{};
    if (host().json_get_string(doc_, view(pointer), &out) != FERRY_OK) return std::nullopt;
    return sv(out);
  }
  std::optional<double> number(std::string_view pointer) const {
    double out = 0;
    if (host().json_get_number(doc_, view(pointer), &out) != FERRY_OK) return std::nullopt;
    return out;
  }
  std::optional<int64_t> integer(std::string_view pointer) const {
    auto n = number(pointer);
    if (!n) return std::nullopt;
    return static_cast<int64_t>(*n);
  }
  std::optional<bool> boolean(std::string_view pointer) const {
    int32_t out = 0;
    if (host().json_get_bool(doc_, view(pointer), &out) != FERRY_OK) return std::nullopt;
    return out != 0;
  }
  size_t size(std::string_view pointer = "") const {
    size_t out = 0;
    if (host().json_size(doc_, view(pointer), &out) != FERRY_OK) return 0;
    return out;
  }
  std::optional<std::string_view> key_at(std::string_view pointer, size_t index) const {
    ferry_view out{};
    if (host().json_key_at(doc_, view(pointer), index, &out) != FERRY_OK) return std::nullopt;
    return sv(out);
  }
  std::string_view dump() const {
    ferry_view out{};
    if (host().json_serialize(doc_, &out) != FERRY_OK) return {};
    return sv(out);
  }

  Status set(std::string_view pointer, std::string_view json_text) {
    return static_cast<Status>(host().json_set(doc_, view(pointer), view(json_text)));
  }
  Status set_string(std::string_view pointer, std::string_view s) { return set(pointer, json_quote(s)); }
  Status remove(std::string_view pointer) {
    return static_cast<Status>(host().json_remove(doc_, view(pointer)));
  }

  ferry_json* handle() const { return doc_; }

 private:
  ferry_json* doc_;
};

// A document the plugin owns, outside any request (1.2): admin bodies, records
// kept in the shared state. Empty if the text is not JSON.
class OwnedJson {
 public:
  static std::optional<OwnedJson> parse(std::string_view text) {
    ferry_json* out = nullptr;
    if (host().json_parse(view(text), &out) != FERRY_OK) return std::nullopt;
    return OwnedJson(out);
  }
  OwnedJson(OwnedJson&& o) noexcept : doc_(std::exchange(o.doc_, nullptr)) {}
  OwnedJson& operator=(OwnedJson&& o) noexcept {
    std::swap(doc_, o.doc_);
    return *this;
  }
  ~OwnedJson() {
    if (doc_) host().json_free(doc_);
  }
  Json json() const { return Json(doc_); }

 private:
  explicit OwnedJson(ferry_json* d) : doc_(d) {}
  ferry_json* doc_;
};

// The text of every message of a chat request, in order, for estimates and
// scoring: string contents and the text parts of part arrays. For an
// embeddings request (1.2), the input strings.
inline std::string request_text(const Json& request) {
  std::string out;
  if (!request.has("/messages")) {
    if (auto one = request.string("/input")) return std::string(*one);
    for (size_t i = 0, n = request.size("/input"); i < n; ++i)
      if (auto s = request.string("/input/" + std::to_string(i))) out.append(*s).push_back('\n');
    return out;
  }
  for (size_t i = 0, n = request.size("/messages"); i < n; ++i) {
    std::string m = "/messages/" + std::to_string(i) + "/content";
    if (auto s = request.string(m)) {
      out.append(*s).push_back('\n');
      continue;
    }
    for (size_t k = 0, parts = request.size(m); k < parts; ++k)
      if (auto t = request.string(m + "/" + std::to_string(k) + "/text")) out.append(*t).push_back('\n');
  }
  return out;
}

// A rough count of a request's prompt tokens before any tokenizer sees it:
// about four characters per token for English text, never fewer than its
// words, and four per message for the framing. Good enough to compare
// providers and check context windows; not billing (prompt_token_bound is
// what a reservation needs).
inline int64_t estimate_prompt_tokens(const Json& request) {
  std::string text = request_text(request);
  int64_t words = 0;
  bool in_word = false;
  for (char c : text) {
    bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  int64_t messages = static_cast<int64_t>(request.size("/messages"));
  return std::max<int64_t>(words, (static_cast<int64_t>(text.size()) + 3) / 4) + 4 * messages;
}

// The image parts of a chat request's messages (image_url, image, input_image).
inline int64_t count_images(const Json& request) {
  int64_t images = 0;
  for (size_t i = 0, n = request.size("/messages"); i < n; ++i) {
    std::string m = "/messages/" + std::to_string(i) + "/content";
    for (size_t k = 0, parts = request.type(m) == FERRY_JSON_ARRAY ? request.size(m) : 0; k < parts; ++k) {
      auto type = request.string(m + "/" + std::to_string(k) + "/type").value_or("");
      if (type == "image_url" || type == "image" || type == "input_image") ++images;
    }
  }
  return images;
}

// A number of prompt tokens the request cannot exceed, whatever its text:
// a token is at least one byte, so the bytes of its messages, tools and
// schemas (their JSON, framing included) bound it, plus `image_tokens` for
// each image (an image's tokens depend on its size, not on its URL's).
// What a budget reserves before the call.
inline int64_t prompt_token_bound(const Json& request, int64_t image_tokens) {
  int64_t bytes = 0;
  for (const char* member :
       {"/messages", "/input", "/tools", "/functions", "/response_format", "/tool_choice"})
    if (auto raw = request.raw(member)) bytes += static_cast<int64_t>(raw->size());
  return bytes + count_images(request) * image_tokens;
}

// Thrown from a plugin constructor to reject its configuration; the host
// reports it at the TOML position of `pointer`.
struct ConfigError : std::runtime_error {
  ConfigError(std::string pointer_, const std::string& message)
      : std::runtime_error(message), pointer(std::move(pointer_)) {}
  std::string pointer;
};

// A plugin's TOML table, as JSON. Typed getters report wrong types and missing
// required keys at their TOML position; reject_unknown_keys() catches typos.
class Config {
 public:
  explicit Config(const ferry_json* doc) : json_(doc) {}

  const Json& json() const { return json_; }
  bool failed() const { return failed_; }

  void error(std::string_view pointer, std::string_view message) {
    failed_ = true;
    host().config_error(json_.handle(), view(pointer), view(message));
  }

  std::string string(std::string_view pointer, std::string_view fallback = {}) {
    auto t = json_.type(pointer);
    if (t == FERRY_JSON_MISSING) return std::string(fallback);
    if (t != FERRY_JSON_STRING) {
      error(pointer, "expected a string");
      return std::string(fallback);
    }
    return std::string(*json_.string(pointer));
  }
  std::string required_string(std::string_view pointer) {
    if (!json_.has(pointer)) {
      error(pointer, "is required (a string)");
      return {};
    }
    return string(pointer);
  }
  double number(std::string_view pointer, double fallback, double min, double max) {
    auto t = json_.type(pointer);
    if (t == FERRY_JSON_MISSING) return fallback;
    auto n = json_.number(pointer);
    if (t != FERRY_JSON_NUMBER || !n) {
      error(pointer, "expected a number");
      return fallback;
    }
    if (*n < min || *n > max) {
      auto text = [](double d) {
        char buf[32];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
        return std::string(buf, static_cast<size_t>(end - buf));
      };
      error(pointer, "must be between " + text(min) + " and " + text(max) + ", not " + text(*n));
      return fallback;
    }
    return *n;
  }
  int64_t integer(std::string_view pointer, int64_t fallback, int64_t min, int64_t max) {
    return static_cast<int64_t>(
        number(pointer, static_cast<double>(fallback), static_cast<double>(min), static_cast<double>(max)));
  }
  bool boolean(std::string_view pointer, bool fallback) {
    auto t = json_.type(pointer);
    if (t == FERRY_JSON_MISSING) return fallback;
    if (t != FERRY_JSON_BOOL) {
      error(pointer, "expected true or false");
      return fallback;
    }
    return *json_.boolean(pointer);
  }
  std::vector<std::string> string_list(std::string_view pointer) {
    std::vector<std::string> out;
    auto t = json_.type(pointer);
    if (t == FERRY_JSON_MISSING) return out;
    if (t != FERRY_JSON_ARRAY) {
      error(pointer, "expected an array of strings");
      return out;
    }
    for (size_t i = 0, n = json_.size(pointer); i < n; ++i) {
      std::string item = std::string(pointer) + "/" + std::to_string(i);
      out.push_back(string(item));
    }
    return out;
  }
  // A router's pipeline and its providers, in order (ABI 1.1, R12).
  std::string pipeline_name() const { return std::string(json_.string("/$pipeline/name").value_or("")); }
  std::vector<std::string> pipeline_providers() const {
    std::vector<std::string> out;
    for (size_t i = 0, n = json_.size("/$pipeline/providers"); i < n; ++i)
      out.emplace_back(json_.string("/$pipeline/providers/" + std::to_string(i)).value_or(""));
    return out;
  }

  // A table of provider name -> number (weights, shares) in document order,
  // each name checked against the pipeline's providers (routers, ABI 1.1).
  std::vector<std::pair<std::string, double>> provider_numbers(std::string_view pointer, double min,
                                                               double max) {
    std::vector<std::pair<std::string, double>> out;
    auto providers = pipeline_providers();
    for (const auto& name : keys(pointer)) {
      std::string ptr = std::string(pointer) + "/" + name;
      double v = number(ptr, 0, min, max);
      if (!providers.empty() && std::find(providers.begin(), providers.end(), name) == providers.end())
        error(ptr, "'" + name + "' is not a provider of this pipeline");
      out.emplace_back(name, v);
    }
    return out;
  }

  // Keys of the object at pointer ("" for the top level).
  std::vector<std::string> keys(std::string_view pointer = "") const {
    std::vector<std::string> out;
    if (json_.type(pointer) != FERRY_JSON_OBJECT) return out;
    for (size_t i = 0, n = json_.size(pointer); i < n; ++i) out.emplace_back(*json_.key_at(pointer, i));
    return out;
  }
  // Reports every top-level key not in `known` (the host strips its own keys
  // before the plugin sees the table).
  void reject_unknown_keys(std::initializer_list<std::string_view> known) {
    for (const auto& k : keys()) {
      if (k.starts_with('$')) continue;  // the host's context, not an option
      bool found = false;
      for (auto kn : known) found = found || kn == k;
      if (!found) {
        std::string expected;
        for (auto kn : known) expected += (expected.empty() ? "" : ", ") + std::string(kn);
        error("/" + k,
              "unknown key '" + k + "'" + (expected.empty() ? "" : " (expected one of: " + expected + ")"));
      }
    }
  }

 private:
  Json json_;
  bool failed_ = false;
};

// One client request. Non-owning; valid until on_complete returns.
// ---- Shared state (ABI 1.2): one service, memory / Redis / SQLite behind it.

// One operation; build it with the named constructors.
struct StateOp {
  ferry_state_request req{};
  std::string key;  // owned copies: the request's views point here
  std::string value;

  static StateOp get(std::string_view key) { return make(FERRY_STATE_GET, key); }
  static StateOp set(std::string_view key, std::string_view value, uint64_t ttl_ms = 0,
                     bool if_absent = false) {
    auto op = make(FERRY_STATE_SET, key);
    op.value = value;
    op.req.ttl_ms = ttl_ms;
    op.req.flags = if_absent ? FERRY_STATE_IF_ABSENT : 0u;
    return op;
  }
  static StateOp remove(std::string_view key) { return make(FERRY_STATE_DELETE, key); }
  // counter += amount unless that passes limit; a new counter lives ttl_ms.
  static StateOp add(std::string_view key, double amount, double limit, uint64_t ttl_ms = 0) {
    auto op = make(FERRY_STATE_ADD, key);
    op.req.amount = amount;
    op.req.limit = limit;
    op.req.ttl_ms = ttl_ms;
    return op;
  }
  static StateOp take_bucket(std::string_view key, double amount, double capacity, double per_second) {
    auto op = make(FERRY_STATE_TAKE_BUCKET, key);
    op.req.amount = amount;
    op.req.limit = capacity;
    op.req.rate = per_second;
    return op;
  }
  static StateOp take_window(std::string_view key, double amount, double limit, uint64_t window_ms) {
    auto op = make(FERRY_STATE_TAKE_WINDOW, key);
    op.req.amount = amount;
    op.req.limit = limit;
    op.req.ttl_ms = window_ms;
    return op;
  }
  static StateOp scan(std::string_view prefix, size_t max = 1000) {
    auto op = make(FERRY_STATE_SCAN, prefix);
    op.req.limit = static_cast<double>(max);
    return op;
  }
  // Applies even past the limit: corrections after the fact.
  StateOp& force() {
    req.flags |= FERRY_STATE_FORCE;
    return *this;
  }
  const ferry_state_request& request() {
    req.key = view(key);
    req.value = view(value);
    return req;
  }

 private:
  static StateOp make(ferry_state_op kind, std::string_view key) {
    StateOp op;
    op.req.struct_size = sizeof op.req;
    op.req.op = kind;
    op.key = key;
    return op;
  }
};

struct StateResult {
  Status status = Status::kContinue;
  bool applied = false;
  double value = 0;
  uint64_t retry_after_ms = 0;
  std::string_view data;  // valid during the callback only
  bool ok() const { return status == Status::kContinue; }
  bool not_found() const { return status == Status::kNotFound; }
  // The backend is down: apply the plugin's fail-open / fail-closed policy.
  bool unavailable() const { return status == Status::kUnavailable; }

  static StateResult from(const ferry_state_result& r) {
    return StateResult{static_cast<Status>(r.status), r.applied != 0, r.value, r.retry_after_ms, sv(r.data)};
  }
};

namespace detail {
inline void run_state_task(ferry_task* task, const ferry_state_result* result) {
  std::unique_ptr<ferry_task> owned(task);
  detail::SelfScope scope(owned->self);
  try {
    owned->state_fn(*result);
  } catch (...) {
    sdk::log(LogLevel::kError, "state callback threw an exception");
  }
}
}  // namespace detail

// A state operation outside a request (create, on_complete, on_event, admin
// work): `done` runs once, on any thread. Errors come back through `done`.
inline void state_call(StateOp op, std::function<void(const StateResult&)> done) {
  auto* task = new ferry_task{nullptr,
                              [done = std::move(done)](const ferry_state_result& r) {
                                if (done && !r.cancelled) done(StateResult::from(r));
                              },
                              nullptr};
  task->self = detail::current_self();
  auto s = host().state_call(detail::current_self(), nullptr, &op.request(), &detail::run_state_task, task);
  if (s != FERRY_OK) {
    ferry_state_result failed{sizeof failed, s, 0, 0, 0, 0, {}};
    detail::run_state_task(task, &failed);
  }
}

class Context {
 public:
  explicit Context(ferry_ctx* ctx) : ctx_(ctx) {}

  std::string_view get(ferry_ctx_field field) const {
    ferry_view out{};
    if (host().ctx_get(ctx_, field, &out) != FERRY_OK) return {};
    return sv(out);
  }
  std::string_view request_id() const { return get(FERRY_CTX_REQUEST_ID); }
  std::string_view pipeline() const { return get(FERRY_CTX_PIPELINE); }
  std::string_view model() const { return get(FERRY_CTX_MODEL); }
  std::string_view provider() const { return get(FERRY_CTX_PROVIDER); }
  bool streaming() const { return get(FERRY_CTX_STREAM) == "1"; }
  // "chat.completions" or "embeddings" (ABI 1.2), "models" to an encoder (1.3).
  std::string_view operation() const { return get(FERRY_CTX_OPERATION); }
  // The client's dialect: the frontend plugin it came through (1.3).
  std::string_view dialect() const { return get(FERRY_CTX_DIALECT); }
  // The client's body as it arrived, while no middleware changed the request
  // (1.3, sdk/ABI.md R21): a provider of the client's dialect sends it on.
  std::optional<std::string_view> native_body() const {
    ferry_view out{};
    if (host().ctx_native_body(ctx_, &out) != FERRY_OK) return std::nullopt;
    return sv(out);
  }
  bool embeddings() const { return operation() == "embeddings"; }

  std::optional<std::string_view> header(std::string_view name) const {
    ferry_view out{};
    if (host().ctx_header(ctx_, view(name), &out) != FERRY_OK) return std::nullopt;
    return sv(out);
  }
  Status set_upstream_header(std::string_view name, std::string_view value) {
    return static_cast<Status>(host().ctx_set_upstream_header(ctx_, view(name), view(value)));
  }
  Status set_response_header(std::string_view name, std::string_view value) {
    return static_cast<Status>(host().ctx_set_response_header(ctx_, view(name), view(value)));
  }
  // Sets the answer and returns kRespond, so a hook can `return ctx.respond(...)`.
  Status respond(int status, std::string_view json_body) {
    auto s = host().ctx_respond(ctx_, status, view(json_body));
    return s == FERRY_OK ? Status::kRespond : static_cast<Status>(s);
  }
  // An OpenAI-shaped error answer.
  Status respond_error(int status, std::string_view type, std::string_view message,
                       std::string_view code = {}) {
    JsonWriter w;
    w.begin_object().key("error").begin_object();
    w.key("message").value(message).key("type").value(type).key("code");
    if (code.empty())
      w.null();
    else
      w.value(code);
    w.end_object().end_object();
    return respond(status, w.str());
  }
  Status resume(Status result) {
    return static_cast<Status>(host().resume(ctx_, static_cast<ferry_status>(result)));
  }
  // Runs fn(false) on this request's thread after delay_ns, or fn(true) if the
  // request ends first.
  Status schedule(uint64_t delay_ns, std::function<void(bool cancelled)> fn) {
    auto* task = new ferry_task{std::move(fn), nullptr, nullptr};
    task->self = detail::current_self();
    auto s = host().schedule(ctx_, delay_ns, &Context::run_task, task);
    if (s != FERRY_OK) delete task;
    return static_cast<Status>(s);
  }
  void log(LogLevel level, std::string_view message) const { sdk::log(level, message, ctx_); }

  // Request metadata shared with other plugins (ABI 1.2): auth sets "key",
  // "user" and "team"; rate-limit and budget read them.
  std::optional<std::string_view> tag(std::string_view name) const {
    ferry_view out{};
    if (host().ctx_get_tag(ctx_, view(name), &out) != FERRY_OK) return std::nullopt;
    return sv(out);
  }
  Status set_tag(std::string_view name, std::string_view value) {
    return static_cast<Status>(host().ctx_set_tag(ctx_, view(name), view(value)));
  }
  // on_request (1.3): the request must have its first byte within ms of its
  // arrival; only ever shortens its deadline.
  Status set_deadline(uint64_t ms) { return static_cast<Status>(host().ctx_set_deadline(ctx_, ms)); }
  // on_attempt (1.3): skip this provider, saying why and when it could take
  // the request (0: unknown). Returns kSkip, so a hook can `return ctx.skip(...)`.
  Status skip(std::string_view reason, uint64_t retry_after_ms = 0) {
    auto s = host().ctx_skip(ctx_, view(reason), retry_after_ms);
    return s == FERRY_OK ? Status::kSkip : static_cast<Status>(s);
  }

  // Runs a shared-state operation for the hook being run and returns the
  // hook's status: `then` decides it from the result. On the memory backend
  // the answer is there at once and `then`'s status is returned directly;
  // otherwise this returns kPause and `then`'s status later resumes the hook
  // (on this request's thread). `then` does not run if the request ended
  // meanwhile. `then` may itself return kPause after starting more work (a
  // second state_then, a schedule()) that will resume the hook.
  Status state_then(const StateOp& op, std::function<Status(Context&, const StateResult&)> then);
  // The same for several operations at once: they are sent together (one
  // round trip on Redis, which pipelines them) and `then` sees every result,
  // in order, once all are in. Each operation is atomic on its own; the set
  // is not (give back what was taken when one is refused).
  Status state_all_then(std::vector<StateOp> ops,
                        std::function<Status(Context&, const std::vector<StateResult>&)> then);

  // An internal request through this gateway's pipelines (ABI 1.2), e.g.
  // ("embeddings", {"model": ..., "input": ...}); no middleware runs on it.
  // Returns kPause (or an error at once); `then` gets the status and JSON
  // body on this request's thread and its status resumes the hook.
  Status call_then(std::string_view operation, std::string_view json_body,
                   std::function<Status(Context&, int status, std::string_view body)> then);

  // A new document owned by this request (freed when it ends).
  std::optional<Json> parse(std::string_view json_text) {
    ferry_json* out = nullptr;
    if (host().json_new(ctx_, view(json_text), &out) != FERRY_OK) return std::nullopt;
    return Json(out);
  }
  std::optional<Json> copy(const Json& src) {
    ferry_json* out = nullptr;
    if (host().json_copy(ctx_, src.handle(), &out) != FERRY_OK) return std::nullopt;
    return Json(out);
  }

  ferry_ctx* handle() const { return ctx_; }

 private:
  static void run_task(ferry_task* task, int32_t cancelled) {
    std::unique_ptr<ferry_task> owned(task);
    detail::SelfScope scope(owned->self);
    try {
      owned->fn(cancelled != 0);
    } catch (...) {
      sdk::log(LogLevel::kError, "scheduled task threw an exception");
    }
  }
  ferry_ctx* ctx_;
};

inline Status Context::state_then(const StateOp& op_in,
                                  std::function<Status(Context&, const StateResult&)> then) {
  // Whether the answer came before state_call returned: then its status is
  // this hook's, and nobody must call resume().
  struct Flow {
    bool calling = true;
    bool answered = false;
    Status status = Status::kContinue;
  };
  auto flow = std::make_shared<Flow>();
  StateOp op = op_in;
  ferry_ctx* c = ctx_;
  auto* task = new ferry_task{nullptr,
                              [flow, c, then = std::move(then)](const ferry_state_result& r) {
                                if (r.cancelled) return;
                                Context ctx(c);
                                Status s;
                                try {
                                  s = then(ctx, StateResult::from(r));
                                } catch (...) {
                                  s = Status::kInternal;
                                }
                                if (flow->calling) {
                                  flow->answered = true;
                                  flow->status = s;
                                } else if (s != Status::kPause) {
                                  // kPause: `then` started more work that resumes the hook.
                                  ctx.resume(s);
                                }
                              },
                              nullptr};
  task->self = detail::current_self();
  auto s = host().state_call(detail::current_self(), ctx_, &op.request(), &detail::run_state_task, task);
  flow->calling = false;
  if (s != FERRY_OK) {
    delete task;
    return static_cast<Status>(s);
  }
  return flow->answered ? flow->status : Status::kPause;
}

inline Status Context::state_all_then(std::vector<StateOp> ops,
                                      std::function<Status(Context&, const std::vector<StateResult>&)> then) {
  struct Join {
    size_t pending = 0;
    std::vector<StateResult> results;
    std::vector<std::string> data;  // owned copies: results' views point here
    bool calling = true;            // still inside state_all_then
    bool answered = false;
    bool cancelled = false;
    Status status = Status::kContinue;
    ferry_ctx* ctx = nullptr;
    std::function<Status(Context&, const std::vector<StateResult>&)> then;
    // The last answer decides, like state_then's single one.
    void finish() {
      if (cancelled) return;
      Context c(ctx);
      for (size_t i = 0; i < results.size(); ++i) results[i].data = data[i];
      Status s;
      try {
        s = then(c, results);
      } catch (...) {
        s = Status::kInternal;
      }
      if (calling) {
        answered = true;
        status = s;
      } else if (s != Status::kPause) {
        c.resume(s);
      }
    }
  };
  auto join = std::make_shared<Join>();
  join->pending = ops.size();
  join->results.resize(ops.size());
  join->data.resize(ops.size());
  join->ctx = ctx_;
  join->then = std::move(then);
  if (ops.empty()) {
    join->finish();
    return join->status;
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    auto* task = new ferry_task{nullptr,
                                [join, i](const ferry_state_result& r) {
                                  if (r.cancelled) join->cancelled = true;
                                  join->results[i] = StateResult::from(r);
                                  join->data[i] = std::string(sv(r.data));
                                  if (--join->pending == 0) join->finish();
                                },
                                nullptr};
    task->self = detail::current_self();
    auto st =
        host().state_call(detail::current_self(), ctx_, &ops[i].request(), &detail::run_state_task, task);
    if (st != FERRY_OK) {
      delete task;
      join->results[i].status = static_cast<Status>(st);
      if (--join->pending == 0) join->finish();
    }
  }
  join->calling = false;
  return join->answered ? join->status : Status::kPause;
}

namespace detail {
inline void run_call_task(ferry_task* task, int32_t status, ferry_view body, int32_t cancelled) {
  std::unique_ptr<ferry_task> owned(task);
  detail::SelfScope scope(owned->self);
  try {
    owned->call_fn(status, sv(body), cancelled != 0);
  } catch (...) {
    sdk::log(LogLevel::kError, "call callback threw an exception");
  }
}
}  // namespace detail

inline Status Context::call_then(std::string_view operation, std::string_view json_body,
                                 std::function<Status(Context&, int, std::string_view)> then) {
  ferry_ctx* c = ctx_;
  auto* task = new ferry_task{nullptr, nullptr,
                              [c, then = std::move(then)](int status, std::string_view body, bool cancelled) {
                                if (cancelled) return;
                                Context ctx(c);
                                Status s;
                                try {
                                  s = then(ctx, status, body);
                                } catch (...) {
                                  s = Status::kInternal;
                                }
                                if (s != Status::kPause) ctx.resume(s);
                              }};
  task->self = detail::current_self();
  auto s = host().ctx_call(ctx_, view(operation), view(json_body), &detail::run_call_task, task);
  if (s != FERRY_OK) {
    delete task;
    return static_cast<Status>(s);
  }
  return Status::kPause;  // the answer always comes later, from the pipeline
}

// Who is asking, by the conventions Ferry's plugins share (1.2), for limits,
// budgets and logs; empty when it cannot be told.
// - "key": the auth plugin's key id (tag "key"), else a hash of the client's
//   own Authorization or x-api-key header (never the credential itself).
// - "user": tag "user", else the x-ferry-user header, else the request's "user".
// - "team": tag "team".
inline std::string requester(const Context& ctx, const Json& request, std::string_view who) {
  if (who == "team") return std::string(ctx.tag("team").value_or(""));
  if (who == "user") {
    if (auto t = ctx.tag("user")) return std::string(*t);
    if (auto h = ctx.header("x-ferry-user")) return std::string(*h);
    return std::string(request.string("/user").value_or(""));
  }
  if (who == "key") {
    if (auto t = ctx.tag("key")) return std::string(*t);
    auto h = ctx.header("authorization");
    if (!h) h = ctx.header("x-api-key");
    if (!h) return {};
    char buf[20];
    std::snprintf(buf, sizeof buf, "h%016llx", static_cast<unsigned long long>(stable_hash(*h)));
    return buf;
  }
  return {};
}

// The upstream HTTP request a provider builds.
class Upstream {
 public:
  explicit Upstream(ferry_upstream* up) : up_(up) {}
  Upstream& method(std::string_view m) {
    host().upstream_set_method(up_, view(m));
    return *this;
  }
  Upstream& url(std::string_view u) {
    host().upstream_set_url(up_, view(u));
    return *this;
  }
  Upstream& header(std::string_view name, std::string_view value) {
    host().upstream_set_header(up_, view(name), view(value), 0);
    return *this;
  }
  // A header whose value the host never logs (API keys).
  Upstream& secret_header(std::string_view name, std::string_view value) {
    host().upstream_set_header(up_, view(name), view(value), 1);
    return *this;
  }
  Upstream& body(std::string_view b) {
    host().upstream_set_body(up_, view(b));
    return *this;
  }
  Upstream& body(const Json& doc) {
    host().upstream_set_body_json(up_, doc.handle());
    return *this;
  }
  Upstream& streaming(bool s) {
    host().upstream_set_streaming(up_, s ? 1 : 0);
    return *this;
  }
  // This upstream was given the client's native body in `dialect` (1.3): its
  // answer may go back to the client as it came.
  Upstream& dialect(std::string_view d) {
    host().upstream_set_dialect(up_, view(d));
    return *this;
  }
  // How the streamed answer is framed (1.3): FERRY_FRAMING_SSE (default),
  // FERRY_FRAMING_NDJSON (StreamParser::on_event per line) or
  // FERRY_FRAMING_RAW (StreamParser::on_bytes).
  Upstream& framing(ferry_framing f) {
    host().upstream_set_framing(up_, f);
    return *this;
  }
  // The client's request cannot go to this provider (1.3): its error, as the
  // client's (class FERRY_ERROR_CLASS_CLIENT unless said), never held against
  // the provider. `return up.refuse(...)` from build_request.
  Status refuse(int http_status, std::string_view type, std::string_view message,
                ferry_error_class cls = FERRY_ERROR_CLASS_CLIENT, std::string_view code = {}) {
    ferry_upstream_error e{sizeof e, http_status, cls, view(type), view(code), view(message), 0};
    host().upstream_refuse(up_, &e);
    return Status::kInvalidArgument;
  }

 private:
  ferry_upstream* up_;
};

// Where a provider delivers canonical (OpenAI-format) results. A serve()
// provider may keep a copy and use it from any thread until it finishes.
class Sink {
 public:
  explicit Sink(ferry_sink* sink) : sink_(sink) {}
  Status response(std::string_view json) {
    return static_cast<Status>(host().sink_response(sink_, view(json)));
  }
  Status chunk(std::string_view json) { return static_cast<Status>(host().sink_chunk(sink_, view(json))); }
  Status done() { return static_cast<Status>(host().sink_done(sink_)); }
  Status error(int http_status, std::string_view type, std::string_view message) {
    return static_cast<Status>(host().sink_error(sink_, http_status, view(type), view(message)));
  }
  // An error with its class (which decides retry, failover or return), a
  // code and when to try again (1.3).
  Status fail(int http_status, ferry_error_class cls, std::string_view type, std::string_view message,
              std::string_view code = {}, uint64_t retry_after_ms = 0) {
    ferry_upstream_error e{sizeof e, http_status, cls, view(type), view(code), view(message), retry_after_ms};
    return static_cast<Status>(host().sink_fail(sink_, &e));
  }
  ferry_sink* handle() const { return sink_; }

 private:
  ferry_sink* sink_;
};

struct HttpResponse {
  int status;
  std::string_view body;
  Json json;  // the body, parsed on first use
  const ferry_headers* headers;
  std::optional<std::string_view> header(std::string_view name) const {
    ferry_view out{};
    if (host().headers_get(headers, view(name), &out) != FERRY_OK) return std::nullopt;
    return sv(out);
  }
};

struct SseEvent {
  std::string_view event;
  std::string_view data;
  std::string_view id;
  Json json;  // data, parsed on first use
};

// Per-stream parse state of a provider; one per upstream stream.
// A provider that overrides on_end or on_bytes names its parser type
// (`using stream_type = MyParser;`) so the wrapper gives the host those hooks.
class StreamParser {
 public:
  virtual ~StreamParser() = default;
  virtual Status on_event(Context& ctx, const SseEvent& event, Sink& sink) = 0;
  // The upstream's body ended with the stream still open (1.3): a dialect
  // whose streams end there calls sink.done(); by default it was cut short.
  virtual Status on_end(Context&, Sink&) { return kOk; }
  // FERRY_FRAMING_RAW (1.3): the bytes as they came, split anywhere.
  virtual Status on_bytes(Context&, std::string_view /*bytes*/, Sink&) { return Status::kUnsupported; }
};

class Provider : public detail::Identity {
 public:
  virtual ~Provider() = default;
  virtual Status build_request(Context&, const Json& /*request*/, Upstream&) { return Status::kUnsupported; }
  virtual Status parse_response(Context&, const HttpResponse&, Sink&) { return Status::kUnsupported; }
  virtual std::unique_ptr<StreamParser> open_stream(Context&) { return nullptr; }
  virtual Status serve(Context&, const Json& /*request*/, Sink&) { return Status::kUnsupported; }
  // A cheap request for active health checks (ABI 1.1); 2xx means healthy.
  virtual Status build_probe(Upstream&) { return Status::kUnsupported; }
};

// Candidates handed to a router and the order it writes.
class Route {
 public:
  Route(std::span<const ferry_candidate* const> candidates, size_t* order)
      : candidates_(candidates), order_(order) {}
  size_t size() const { return candidates_.size(); }
  const ferry_candidate& operator[](size_t i) const { return *candidates_[i]; }
  std::string_view name(size_t i) const { return sv(candidates_[i]->name); }
  // The provider's `attributes` table (tier, price, capabilities, ...).
  Json attributes(size_t i) const { return Json(candidates_[i]->attributes); }
  // Appends candidate i to the fallback chain (ignored if already there).
  void push(size_t i) {
    if (i >= candidates_.size()) return;
    for (size_t k = 0; k < len_; ++k)
      if (order_[k] == i) return;
    order_[len_++] = i;
  }
  size_t length() const { return len_; }

 private:
  std::span<const ferry_candidate* const> candidates_;
  size_t* order_;
  size_t len_ = 0;
};

class Router : public detail::Identity {
 public:
  virtual ~Router() = default;
  virtual Status route(Context& ctx, const Json& request, Route& route) = 0;
};

// Hooks of one request. Pass-through by default: override only what you need.
class Filter {
 public:
  virtual ~Filter() = default;
  virtual Status on_request(Context&, Json& /*request*/) { return Status::kContinue; }
  virtual Status on_response(Context&, Json& /*response*/) { return Status::kContinue; }
  virtual Status on_chunk(Context&, Json& /*chunk*/) { return Status::kContinue; }
  // Before each upstream attempt (1.2): kContinue, kSkip (try the next
  // provider) or kPause.
  virtual Status on_attempt(Context&, std::string_view /*provider*/) { return Status::kContinue; }
  virtual void on_complete(Context&, const ferry_request_summary&) {}
};

// An operator's request to a middleware (ABI 1.2): METHOD
// /admin/plugins/<middleware name><path> on the admin listener.
struct AdminRequest {
  std::string_view method;
  std::string_view path;  // "/keys/abc", or ""
  std::string_view query;
  std::string_view body;  // valid during on_admin only
};

// Where the answer goes: call send() exactly once, from any thread, now or
// later (copy the handle into a state callback).
class AdminReply {
 public:
  explicit AdminReply(ferry_admin_reply* r) : r_(r) {}
  void send(int status, std::string_view json_body) const { host().admin_reply(r_, status, view(json_body)); }
  void error(int status, std::string_view code, std::string_view message) const {
    JsonWriter w;
    w.begin_object().key("error").begin_object();
    w.key("message").value(message).key("type").value("invalid_request_error").key("code").value(code);
    w.end_object().end_object();
    send(status, w.str());
  }

 private:
  ferry_admin_reply* r_;
};

// One configured middleware block. Shared by all worker threads: either keep
// it immutable and override the hooks here, or return a per-request Filter
// from new_filter() (then the hooks run on that filter).
class Middleware : public Filter, public detail::Identity {
 public:
  virtual std::unique_ptr<Filter> new_filter(Context&) { return nullptr; }
  // A gateway event (failover, breaker, health; ABI 1.1). Any thread, concurrently.
  virtual void on_event(const ferry_event&) {}
  // An admin request (1.2), on the admin thread: answer through `reply` and
  // return kContinue. Anything else answers 500 (and `reply` must not be used).
  virtual Status on_admin(const AdminRequest&, AdminReply) { return Status::kUnsupported; }
};

namespace detail {

template <class F>
ferry_status guarded(const char* what, F&& f) noexcept {
  try {
    return static_cast<ferry_status>(f());
  } catch (const std::exception& e) {
    if (g_host) sdk::log(LogLevel::kError, std::string(what) + " threw: " + e.what());
  } catch (...) {
    if (g_host) sdk::log(LogLevel::kError, std::string(what) + " threw a non-standard exception");
  }
  return FERRY_ERR_INTERNAL;
}

template <class T>
T* self(ferry_instance* i) {
  return reinterpret_cast<T*>(i);
}

// guarded(), with the instance `i` (created as a B) current while it runs.
template <class B, class F>
ferry_status guarded_as(ferry_instance* i, const char* what, F&& f) noexcept {
  SelfScope scope(static_cast<Identity*>(self<B>(i))->instance_handle());
  return guarded(what, std::forward<F>(f));
}

// The instance's own handle (ABI 1.3), or the library's from an older host.
inline ferry_plugin_handle* instance_self(const ferry_json* config) {
  if (g_host->struct_size <= offsetof(ferry_host_api, instance_self) || !g_host->instance_self) return g_self;
  ferry_plugin_handle* h = g_host->instance_self(config);
  return h ? h : g_self;
}

template <class T, class Base>
ferry_status create(const ferry_json* config, ferry_instance** out) noexcept {
  *out = nullptr;
  Config cfg(config);
  ferry_plugin_handle* me = instance_self(config);
  SelfScope scope(me);  // what the constructor logs or stores is the instance's too
  try {
    auto obj = std::make_unique<T>(cfg);
    if (cfg.failed()) return FERRY_ERR_CONFIG;
    static_cast<Identity&>(*obj).handle_ = me;
    *out = reinterpret_cast<ferry_instance*>(static_cast<Base*>(obj.release()));
    return FERRY_OK;
  } catch (const ConfigError& e) {
    cfg.error(e.pointer, e.what());
  } catch (const std::exception& e) {
    cfg.error("", e.what());
  } catch (...) {
    cfg.error("", "plugin constructor threw a non-standard exception");
  }
  return FERRY_ERR_CONFIG;
}

template <class B>
void destroy(ferry_instance* i) noexcept {
  delete self<B>(i);
}

inline HttpResponse to_response(const ferry_http_response* r) {
  return HttpResponse{r->status, sv(r->body), Json(r->json), r->headers};
}

struct ProviderGlue {
  static ferry_status build_request(ferry_instance* i, ferry_ctx* c, const ferry_json* req,
                                    ferry_upstream* up) noexcept {
    return guarded_as<Provider>(i, "build_request", [&] {
      Context ctx(c);
      Upstream u(up);
      return self<Provider>(i)->build_request(ctx, Json(req), u);
    });
  }
  static ferry_status parse_response(ferry_instance* i, ferry_ctx* c, const ferry_http_response* r,
                                     ferry_sink* s) noexcept {
    return guarded_as<Provider>(i, "parse_response", [&] {
      Context ctx(c);
      Sink sink(s);
      return self<Provider>(i)->parse_response(ctx, to_response(r), sink);
    });
  }
  static ferry_status stream_open(ferry_instance* i, ferry_ctx* c, ferry_stream** out) noexcept {
    *out = nullptr;
    return guarded_as<Provider>(i, "stream_open", [&] {
      Context ctx(c);
      auto parser = self<Provider>(i)->open_stream(ctx);
      if (!parser) return Status::kUnsupported;
      *out = reinterpret_cast<ferry_stream*>(parser.release());
      return kOk;
    });
  }
  static ferry_status parse_event(ferry_instance* i, ferry_stream* st, ferry_ctx* c, const ferry_sse_event* e,
                                  ferry_sink* s) noexcept {
    return guarded_as<Provider>(i, "parse_event", [&] {
      Context ctx(c);
      Sink sink(s);
      SseEvent ev{sv(e->event), sv(e->data), sv(e->id), Json(e->json)};
      return reinterpret_cast<StreamParser*>(st)->on_event(ctx, ev, sink);
    });
  }
  static void stream_close(ferry_instance*, ferry_stream* st) noexcept {
    delete reinterpret_cast<StreamParser*>(st);
  }
  static ferry_status stream_end(ferry_instance* i, ferry_stream* st, ferry_ctx* c, ferry_sink* s) noexcept {
    return guarded_as<Provider>(i, "stream_end", [&] {
      Context ctx(c);
      Sink sink(s);
      return reinterpret_cast<StreamParser*>(st)->on_end(ctx, sink);
    });
  }
  static ferry_status parse_bytes(ferry_instance* i, ferry_stream* st, ferry_ctx* c, ferry_view bytes,
                                  ferry_sink* s) noexcept {
    return guarded_as<Provider>(i, "parse_bytes", [&] {
      Context ctx(c);
      Sink sink(s);
      return reinterpret_cast<StreamParser*>(st)->on_bytes(ctx, sv(bytes), sink);
    });
  }
  static ferry_status build_probe(ferry_instance* i, ferry_upstream* up) noexcept {
    return guarded_as<Provider>(i, "build_probe", [&] {
      Upstream u(up);
      return self<Provider>(i)->build_probe(u);
    });
  }
  static ferry_status serve(ferry_instance* i, ferry_ctx* c, const ferry_json* req, ferry_sink* s) noexcept {
    return guarded_as<Provider>(i, "serve", [&] {
      Context ctx(c);
      Sink sink(s);
      return self<Provider>(i)->serve(ctx, Json(req), sink);
    });
  }
};

// A provider's stream parser type, when it names it, else StreamParser itself.
template <class T, class = void>
struct stream_type_of {
  using type = StreamParser;
};
template <class T>
struct stream_type_of<T, std::void_t<typename T::stream_type>> {
  using type = typename T::stream_type;
};

// Only what T really overrides goes into the vtable, so the host can tell a
// serving provider from an HTTP one (NULL = not implemented, ABI.md R6).
template <class T>
const ferry_provider_vtable* provider_vtable() {
  static const ferry_provider_vtable vt = [] {
    ferry_provider_vtable v{};
    v.struct_size = sizeof v;
    v.create = &create<T, Provider>;
    v.destroy = &destroy<Provider>;
    if constexpr (!std::is_same_v<decltype(&T::build_request), decltype(&Provider::build_request)>)
      v.build_request = &ProviderGlue::build_request;
    if constexpr (!std::is_same_v<decltype(&T::parse_response), decltype(&Provider::parse_response)>)
      v.parse_response = &ProviderGlue::parse_response;
    if constexpr (!std::is_same_v<decltype(&T::open_stream), decltype(&Provider::open_stream)>) {
      v.stream_open = &ProviderGlue::stream_open;
      v.parse_event = &ProviderGlue::parse_event;
      v.stream_close = &ProviderGlue::stream_close;
    }
    if constexpr (!std::is_same_v<decltype(&T::serve), decltype(&Provider::serve)>)
      v.serve = &ProviderGlue::serve;
    if constexpr (!std::is_same_v<decltype(&T::build_probe), decltype(&Provider::build_probe)>)
      v.build_probe = &ProviderGlue::build_probe;
    using S = typename stream_type_of<T>::type;
    if constexpr (!std::is_same_v<decltype(&S::on_end), decltype(&StreamParser::on_end)>)
      v.stream_end = &ProviderGlue::stream_end;
    if constexpr (!std::is_same_v<decltype(&S::on_bytes), decltype(&StreamParser::on_bytes)>)
      v.parse_bytes = &ProviderGlue::parse_bytes;
    return v;
  }();
  return &vt;
}

struct RouterGlue {
  static ferry_status route(ferry_instance* i, ferry_ctx* c, const ferry_json* req,
                            const ferry_candidate* const* cands, size_t n, size_t* order,
                            size_t* order_len) noexcept {
    *order_len = 0;
    return guarded_as<Router>(i, "route", [&] {
      Context ctx(c);
      Route r(std::span<const ferry_candidate* const>(cands, n), order);
      auto s = self<Router>(i)->route(ctx, Json(req), r);
      *order_len = r.length();
      return s;
    });
  }
};

template <class T>
const ferry_router_vtable* router_vtable() {
  static const ferry_router_vtable vt = [] {
    ferry_router_vtable v{};
    v.struct_size = sizeof v;
    v.create = &create<T, Router>;
    v.destroy = &destroy<Router>;
    v.route = &RouterGlue::route;
    return v;
  }();
  return &vt;
}

struct MiddlewareGlue {
  static Filter& target(ferry_instance* i, ferry_filter* f) {
    if (f) return *reinterpret_cast<Filter*>(f);
    return *self<Middleware>(i);
  }
  static ferry_status filter_new(ferry_instance* i, ferry_ctx* c, ferry_filter** out) noexcept {
    *out = nullptr;
    return guarded_as<Middleware>(i, "new_filter", [&] {
      Context ctx(c);
      *out = reinterpret_cast<ferry_filter*>(self<Middleware>(i)->new_filter(ctx).release());
      return kOk;
    });
  }
  static void filter_free(ferry_instance*, ferry_filter* f) noexcept { delete reinterpret_cast<Filter*>(f); }
  static ferry_status on_request(ferry_instance* i, ferry_filter* f, ferry_ctx* c, ferry_json* doc) noexcept {
    return guarded_as<Middleware>(i, "on_request", [&] {
      Context ctx(c);
      Json j(doc);
      return target(i, f).on_request(ctx, j);
    });
  }
  static ferry_status on_response(ferry_instance* i, ferry_filter* f, ferry_ctx* c,
                                  ferry_json* doc) noexcept {
    return guarded_as<Middleware>(i, "on_response", [&] {
      Context ctx(c);
      Json j(doc);
      return target(i, f).on_response(ctx, j);
    });
  }
  static ferry_status on_chunk(ferry_instance* i, ferry_filter* f, ferry_ctx* c, ferry_json* doc) noexcept {
    return guarded_as<Middleware>(i, "on_chunk", [&] {
      Context ctx(c);
      Json j(doc);
      return target(i, f).on_chunk(ctx, j);
    });
  }
  static void on_event(ferry_instance* i, const ferry_event* e) noexcept {
    guarded_as<Middleware>(i, "on_event", [&] {
      self<Middleware>(i)->on_event(*e);
      return kOk;
    });
  }
  static ferry_status on_attempt(ferry_instance* i, ferry_filter* f, ferry_ctx* c,
                                 ferry_view provider) noexcept {
    return guarded_as<Middleware>(i, "on_attempt", [&] {
      Context ctx(c);
      return target(i, f).on_attempt(ctx, sv(provider));
    });
  }
  static ferry_status on_admin(ferry_instance* i, const ferry_admin_request* r,
                               ferry_admin_reply* reply) noexcept {
    return guarded_as<Middleware>(i, "on_admin", [&] {
      AdminRequest req{sv(r->method), sv(r->path), sv(r->query), sv(r->body)};
      return self<Middleware>(i)->on_admin(req, AdminReply(reply));
    });
  }
  static void on_complete(ferry_instance* i, ferry_filter* f, ferry_ctx* c,
                          const ferry_request_summary* s) noexcept {
    guarded_as<Middleware>(i, "on_complete", [&] {
      Context ctx(c);
      target(i, f).on_complete(ctx, *s);
      return kOk;
    });
  }
};

// A middleware's per-request filter type, when it names it (`using
// filter_type = MyFilter;`), else Filter itself (which overrides nothing).
template <class T, class = void>
struct filter_type_of {
  using type = Filter;
};
template <class T>
struct filter_type_of<T, std::void_t<typename T::filter_type>> {
  using type = typename T::filter_type;
};
template <class T>
inline constexpr bool has_filter_type = !std::is_same_v<typename filter_type_of<T>::type, Filter>;

template <class T>
const ferry_middleware_vtable* middleware_vtable() {
  static const ferry_middleware_vtable vt = [] {
    ferry_middleware_vtable v{};
    v.struct_size = sizeof v;
    v.create = &create<T, Middleware>;
    v.destroy = &destroy<Middleware>;
    v.filter_new = &MiddlewareGlue::filter_new;
    v.filter_free = &MiddlewareGlue::filter_free;
    // Hooks stay NULL unless T or its filter overrides them, so the host skips
    // the call entirely on the hot path (an on_chunk costs a parse of every
    // streamed chunk). Filters named by `using filter_type = ...;` are looked
    // at; an unnamed filter type may override anything, so then every hook is set.
    constexpr bool has_filter = !std::is_same_v<decltype(&T::new_filter), decltype(&Middleware::new_filter)>;
    constexpr bool unknown_filter = has_filter && !has_filter_type<T>;
    using F = typename filter_type_of<T>::type;
    if (unknown_filter || !std::is_same_v<decltype(&T::on_request), decltype(&Filter::on_request)> ||
        !std::is_same_v<decltype(&F::on_request), decltype(&Filter::on_request)>)
      v.on_request = &MiddlewareGlue::on_request;
    if (unknown_filter || !std::is_same_v<decltype(&T::on_response), decltype(&Filter::on_response)> ||
        !std::is_same_v<decltype(&F::on_response), decltype(&Filter::on_response)>)
      v.on_response = &MiddlewareGlue::on_response;
    if (unknown_filter || !std::is_same_v<decltype(&T::on_chunk), decltype(&Filter::on_chunk)> ||
        !std::is_same_v<decltype(&F::on_chunk), decltype(&Filter::on_chunk)>)
      v.on_chunk = &MiddlewareGlue::on_chunk;
    if (unknown_filter || !std::is_same_v<decltype(&T::on_complete), decltype(&Filter::on_complete)> ||
        !std::is_same_v<decltype(&F::on_complete), decltype(&Filter::on_complete)>)
      v.on_complete = &MiddlewareGlue::on_complete;
    if (unknown_filter || !std::is_same_v<decltype(&T::on_attempt), decltype(&Filter::on_attempt)> ||
        !std::is_same_v<decltype(&F::on_attempt), decltype(&Filter::on_attempt)>)
      v.on_attempt = &MiddlewareGlue::on_attempt;
    if (!std::is_same_v<decltype(&T::on_event), decltype(&Middleware::on_event)>)
      v.on_event = &MiddlewareGlue::on_event;
    if (!std::is_same_v<decltype(&T::on_admin), decltype(&Middleware::on_admin)>)
      v.on_admin = &MiddlewareGlue::on_admin;
    if (!has_filter) {
      v.filter_new = nullptr;
      v.filter_free = nullptr;
    }
    return v;
  }();
  return &vt;
}

inline ferry_status negotiate(ferry_negotiation* n, const ferry_plugin_info* info) noexcept {
  if (!n || n->struct_size < offsetof(ferry_negotiation, plugin) + sizeof(n->plugin))
    return FERRY_ERR_ABI_MISMATCH;
  n->plugin_abi_major = FERRY_ABI_MAJOR;
  n->plugin_abi_minor = FERRY_ABI_MINOR;
  n->plugin = nullptr;
  if (n->host_abi_major != FERRY_ABI_MAJOR || !n->host) return FERRY_ERR_ABI_MISMATCH;
  g_host = n->host;
  g_self = n->self;
  n->plugin = info;
  return FERRY_OK;
}

}  // namespace detail
}  // namespace ferry::sdk

#include "ferry/sdk/frontend.hpp"

#define FERRY_SDK_DEFINE_ENTRY_(kind_value, field, vtable_expr, plugin_name, plugin_version)    \
  extern "C" FERRY_EXPORT ferry_status ferry_plugin_negotiate(ferry_negotiation* negotiation) { \
    static const ferry_plugin_info info = [] {                                                  \
      ferry_plugin_info i{};                                                                    \
      i.struct_size = sizeof i;                                                                 \
      i.name = plugin_name;                                                                     \
      i.version = plugin_version;                                                               \
      i.kind = kind_value;                                                                      \
      i.field = vtable_expr;                                                                    \
      return i;                                                                                 \
    }();                                                                                        \
    return ::ferry::sdk::detail::negotiate(negotiation, &info);                                 \
  }

// Exactly one of these per plugin library.
#define FERRY_PROVIDER_PLUGIN(Type, name, version)                                                      \
  FERRY_SDK_DEFINE_ENTRY_(FERRY_KIND_PROVIDER, provider, ::ferry::sdk::detail::provider_vtable<Type>(), \
                          name, version)
#define FERRY_ROUTER_PLUGIN(Type, name, version)                                                        \
  FERRY_SDK_DEFINE_ENTRY_(FERRY_KIND_ROUTER, router, ::ferry::sdk::detail::router_vtable<Type>(), name, \
                          version)
#define FERRY_MIDDLEWARE_PLUGIN(Type, name, version)         \
  FERRY_SDK_DEFINE_ENTRY_(FERRY_KIND_MIDDLEWARE, middleware, \
                          ::ferry::sdk::detail::middleware_vtable<Type>(), name, version)
// ABI 1.3.
#define FERRY_FRONTEND_PLUGIN(Type, name, version)                                                      \
  FERRY_SDK_DEFINE_ENTRY_(FERRY_KIND_FRONTEND, frontend, ::ferry::sdk::detail::frontend_vtable<Type>(), \
                          name, version)

#endif  // FERRY_PLUGIN_HPP
