#include "core/json/parse.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <utility>
#include <vector>

namespace ferry::json {

const ParseLimits& ParseLimits::defaults() {
  static const ParseLimits limits;
  return limits;
}

std::string printable(std::string_view text, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  size_t n = std::min(text.size(), max_bytes);
  out.reserve(n + 8);
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out.append("\\x").push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  if (text.size() > n) out.append("...");
  return out;
}

std::string dump(const Value& v) {
  try {
    return v.dump(-1, ' ', false, Value::error_handler_t::replace);
  } catch (...) {
    // Only allocation can fail here; the caller still gets valid JSON.
    return "null";
  }
}

namespace {

// Keys are not const here, unlike in ordered_map's own vector, so growing
// it moves members instead of copying their subtrees.
using Members = std::vector<std::pair<std::string, Value>>;

// Builds the tree from nlohmann's SAX events. Object members collect in a
// vector of their own per nesting level (reused from one object to the next)
// and move into the object once it is complete: ordered_map's own insert
// searches every key (quadratic), and its vector copies whole subtrees when
// it grows (its element's key is const, so it is not nothrow-movable).
class Builder {
 public:
  using string_t = Value::string_t;
  using binary_t = Value::binary_t;

  Builder(Value& root, const ParseLimits& limits) : root_(root), limits_(limits) {}

  bool null() { return scalar(nullptr); }
  bool boolean(bool v) { return scalar(v); }
  bool number_integer(Value::number_integer_t v) { return scalar(v); }
  bool number_unsigned(Value::number_unsigned_t v) { return scalar(v); }
  bool number_float(Value::number_float_t v, const string_t&) { return scalar(v); }
  bool string(string_t& v) {
    if (v.size() > limits_.max_string_bytes) return limit("a string longer than", limits_.max_string_bytes);
    return scalar(std::move(v));
  }
  bool binary(binary_t&) { return fail(ParseError::Kind::kSyntax, "binary values are not JSON"); }

  bool start_object(std::size_t) { return open(true); }
  bool key(string_t& k) {
    Frame& f = frames_[depth_ - 1];
    if (k.size() > limits_.max_string_bytes) return limit("a key longer than", limits_.max_string_bytes);
    if (f.members.size() >= limits_.max_object_keys)
      return limit("an object with more keys than", limits_.max_object_keys);
    f.members.emplace_back(std::move(k), nullptr);
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(false); }
  bool end_array() { return close(); }

  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& e) {
    if (error_.kind != ParseError::Kind::kNone) return false;  // a limit stopped the parse
    // nlohmann's what() is "[json.exception.parse_error.101] parse error at
    // line 1, column 5: syntax error ... last read: '...'": keep the reason.
    std::string_view what = e.what();
    if (auto colon = what.find(": "); colon != std::string_view::npos) what.remove_prefix(colon + 2);
    if (auto last = what.find("; last read:"); last != std::string_view::npos) what = what.substr(0, last);
    std::string message = "invalid JSON at byte " + std::to_string(position > 0 ? position - 1 : 0) + ": " +
                          printable(what, 300);
    if (!last_token.empty()) message += " (near '" + printable(last_token, 40) + "')";
    return fail(ParseError::Kind::kSyntax, std::move(message));
  }

  ParseError take_error() { return std::move(error_); }

 private:
  struct Frame {
    bool object = false;
    Value* target = nullptr;  // the container being built
    Members members;          // objects: collected here until the end
    uint64_t items = 0;       // arrays
  };

  // Where the next value goes: the top-level value, the object's last key,
  // or a new element at the end of the array.
  Value* slot() {
    if (depth_ == 0) return &root_;
    Frame& f = frames_[depth_ - 1];
    if (f.object) return &f.members.back().second;
    auto& items = f.target->get_ref<Value::array_t&>();
    return &items.emplace_back();
  }

  bool count_value() {
    if (++values_ > limits_.max_values) return limit("more values than", limits_.max_values);
    if (depth_ > 0) {
      Frame& f = frames_[depth_ - 1];
      if (!f.object && ++f.items > limits_.max_array_items)
        return limit("an array with more items than", limits_.max_array_items);
    }
    return true;
  }

  template <class T>
  bool scalar(T&& v) {
    if (!count_value()) return false;
    *slot() = Value(std::forward<T>(v));
    return true;
  }

  bool open(bool object) {
    if (!count_value()) return false;
    if (depth_ + 1 > limits_.max_depth) return limit("nesting deeper than", limits_.max_depth);
    Value* target = slot();
    *target = object ? Value::object() : Value::array();
    if (frames_.size() <= depth_) frames_.emplace_back();
    Frame& f = frames_[depth_++];
    f.object = object;
    f.target = target;
    f.members.clear();
    f.items = 0;
    return true;
  }

  bool close() {
    Frame& f = frames_[depth_ - 1];
    if (f.object && !finish_object(f)) return false;
    --depth_;
    return true;
  }

  // Moves the collected members into the object, after checking keys for
  // duplicates: by sorting positions (n log n whatever the keys are; a hash
  // set could be flooded with colliding keys). Duplicates are rare, so what
  // follows a finding may take its time.
  bool finish_object(Frame& f) {
    Members& m = f.members;
    std::vector<bool> dropped;
    if (m.size() > 1 && has_duplicates(m)) {
      if (limits_.reject_duplicate_keys)
        return fail(ParseError::Kind::kDuplicateKey, "duplicate key '" + printable(first_duplicate(m), 80) +
                                                         "' in the object at " + where(depth_));
      dropped = last_wins(m);
    }
    auto& object = f.target->get_ref<Value::object_t&>();
    // The top level gets room for the few keys the host adds (stream_options,
    // a mapped model) without the vector growing and copying the tree.
    object.reserve(m.size() + (depth_ == 1 ? 4 : 0));
    auto& members = static_cast<Value::object_t::Container&>(object);
    for (size_t i = 0; i < m.size(); ++i)
      if (dropped.empty() || !dropped[i]) members.emplace_back(std::move(m[i].first), std::move(m[i].second));
    m.clear();
    return true;
  }

  // order_: member positions sorted by key, equal keys in position order.
  void sort_keys(const Members& m) {
    order_.resize(m.size());
    std::iota(order_.begin(), order_.end(), 0u);
    std::stable_sort(order_.begin(), order_.end(),
                     [&](uint32_t a, uint32_t b) { return m[a].first < m[b].first; });
  }

  bool has_duplicates(const Members& m) {
    if (m.size() <= 16) {
      for (size_t i = 1; i < m.size(); ++i)
        for (size_t j = 0; j < i; ++j)
          if (m[i].first == m[j].first) return true;
      return false;
    }
    sort_keys(m);
    for (size_t i = 1; i < order_.size(); ++i)
      if (m[order_[i]].first == m[order_[i - 1]].first) return true;
    return false;
  }

  std::string first_duplicate(const Members& m) {
    sort_keys(m);
    for (size_t i = 1; i < order_.size(); ++i)
      if (m[order_[i]].first == m[order_[i - 1]].first) return m[order_[i]].first;
    return {};
  }

  // For each repeated key the last value stays, at the first one's place.
  std::vector<bool> last_wins(Members& m) {
    sort_keys(m);
    std::vector<bool> dropped(m.size(), false);
    for (size_t i = 0; i < order_.size();) {
      size_t j = i + 1;
      while (j < order_.size() && m[order_[j]].first == m[order_[i]].first) ++j;
      if (j - i > 1) {
        m[order_[i]].second = std::move(m[order_[j - 1]].second);
        for (size_t k = i + 1; k < j; ++k) dropped[order_[k]] = true;
      }
      i = j;
    }
    return dropped;
  }

  bool limit(const char* what, uint64_t bound) {
    return fail(ParseError::Kind::kLimit,
                std::string(what) + " " + std::to_string(bound) + " at " + where(depth_));
  }

  // A JSON pointer to the container at nesting level `levels` (1: the top
  // level), its first few tokens.
  std::string where(size_t levels) const {
    std::string out;
    for (size_t i = 0; i + 1 < levels && i < frames_.size(); ++i) {
      if (i == 6) {
        out += "/...";
        break;
      }
      const Frame& f = frames_[i];
      out += '/';
      if (!f.object) {
        out += std::to_string(f.target->empty() ? 0 : f.target->size() - 1);
      } else if (!f.members.empty()) {
        for (char c : f.members.back().first.substr(0, 40))
          out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
      }
    }
    return out.empty() ? "the top level" : printable(out, 300);
  }

  bool fail(ParseError::Kind kind, std::string message) {
    if (error_.kind == ParseError::Kind::kNone) error_ = ParseError{kind, std::move(message)};
    return false;
  }

  Value& root_;
  const ParseLimits& limits_;
  std::vector<Frame> frames_;
  size_t depth_ = 0;
  uint64_t values_ = 0;
  std::vector<uint32_t> order_;
  ParseError error_;
};

}  // namespace

bool parse(std::string_view text, Value& out, const ParseLimits& limits, ParseError* error) {
  auto failed = [&](ParseError::Kind kind, std::string message) {
    out = nullptr;
    if (error) *error = ParseError{kind, std::move(message)};
    return false;
  };
  // nlohmann's lexer ends the input at a NUL byte and skips a byte order
  // mark; the validator and RFC 8259 do neither, and neither do we.
  if (const void* nul = std::memchr(text.data(), 0, text.size()))
    return failed(ParseError::Kind::kSyntax, "invalid JSON at byte " +
                                                 std::to_string(static_cast<const char*>(nul) - text.data()) +
                                                 ": a NUL byte");
  if (text.starts_with("\xEF\xBB\xBF"))
    return failed(ParseError::Kind::kSyntax, "invalid JSON at byte 0: a byte order mark");
  Value result;
  Builder builder(result, limits);
  bool ok = false;
  try {
    ok = Value::sax_parse(text.begin(), text.end(), &builder, Value::input_format_t::json,
                          /*strict=*/true, /*ignore_comments=*/false);
  } catch (const std::exception& e) {
    return failed(ParseError::Kind::kSyntax, std::string("cannot parse JSON: ") + e.what());
  }
  if (!ok) {
    ParseError e = builder.take_error();
    if (e.kind == ParseError::Kind::kNone) e = ParseError{ParseError::Kind::kSyntax, "invalid JSON"};
    return failed(e.kind, std::move(e.message));
  }
  out = std::move(result);
  return true;
}

}  // namespace ferry::json
