// ferry/sdk/json.hpp - JSON: JsonWriter builds text; Json reads and edits a host document by JSON pointer;
// OwnedJson outlives requests. Part of the C++ wrapper; include <ferry/plugin.hpp>, which includes every part
// in order.
#ifndef FERRY_SDK_JSON_HPP
#define FERRY_SDK_JSON_HPP

#ifndef FERRY_PLUGIN_HPP
#error "include <ferry/plugin.hpp>"
#endif

namespace ferry::sdk {

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

}  // namespace ferry::sdk

#endif  // FERRY_SDK_JSON_HPP
