#include "core/json/doc.h"

#include <charconv>

#include "core/json/validate.h"

namespace ferry::json {

Doc Doc::from_text(std::string text, const ParseLimits* limits) {
  Doc d;
  d.text_ = std::move(text);
  d.limits_ = limits;
  d.has_text_ = true;
  d.state_ = State::kUnparsed;
  return d;
}

void Doc::reset_text(std::string_view text, const ParseLimits* limits) {
  text_.assign(text);
  has_text_ = true;
  value_ = nullptr;
  limits_ = limits;
  error_ = {};
  state_ = State::kUnparsed;
  frozen_ = false;
  scratch_.clear();
}

Doc Doc::from_value(Value value) {
  Doc d;
  d.value_ = std::move(value);
  d.state_ = State::kParsed;
  return d;
}

Doc Doc::from_parsed(std::string text, Value value) {
  Doc d;
  d.text_ = std::move(text);
  d.has_text_ = true;
  d.value_ = std::move(value);
  d.state_ = State::kParsed;
  return d;
}

Value* Doc::value() {
  if (state_ == State::kUnparsed) {
    bool ok = json::parse(text_, value_, limits_ ? *limits_ : ParseLimits::defaults(), &error_);
    state_ = ok ? State::kParsed : State::kInvalid;
  }
  return state_ == State::kParsed ? &value_ : nullptr;
}

bool Doc::is_object() {
  if (state_ == State::kParsed) return value_.is_object();
  if (state_ == State::kInvalid) return false;
  // The scan agrees with the parser under the default limits only.
  if (limits_) return value() && value_.is_object();
  return is_json_object(text_);
}

std::string_view Doc::text() {
  if (!has_text_) {
    text_ = json::dump(value_);
    has_text_ = true;
  }
  return text_;
}

void Doc::changed() {
  has_text_ = false;
  text_.clear();
  ++generation_;
}

namespace {
thread_local std::deque<std::string> t_scratch;
}  // namespace

std::string_view Doc::keep(std::string s) {
  return frozen_ ? t_scratch.emplace_back(std::move(s)) : scratch_.emplace_back(std::move(s));
}

void Doc::freeze() {
  value();
  text();
  frozen_ = true;
}

void Doc::clear_thread_scratch() { t_scratch.clear(); }

namespace {

// Splits the next reference token off `rest` and unescapes ~1 and ~0 into
// `scratch` only when needed.
bool next_token(std::string_view& rest, std::string_view& token, std::string& scratch) {
  if (rest.empty() || rest.front() != '/') return false;
  rest.remove_prefix(1);
  auto end = rest.find('/');
  token = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (token.find('~') == std::string_view::npos) return true;
  scratch.clear();
  for (size_t i = 0; i < token.size(); ++i) {
    if (token[i] == '~' && i + 1 < token.size() && (token[i + 1] == '0' || token[i + 1] == '1')) {
      scratch.push_back(token[i + 1] == '0' ? '~' : '/');
      ++i;
    } else {
      scratch.push_back(token[i]);
    }
  }
  token = scratch;
  return true;
}

bool array_index(std::string_view token, size_t size, size_t& out) {
  if (token.empty() || (token.size() > 1 && token[0] == '0')) return false;
  auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), out);
  return ec == std::errc() && p == token.data() + token.size() && out < size;
}

template <class V>
V* child(V& node, std::string_view token) {
  if (node.is_object()) {
    auto it = node.find(token);
    return it == node.end() ? nullptr : &*it;
  }
  if (node.is_array()) {
    size_t i = 0;
    return array_index(token, node.size(), i) ? &node[i] : nullptr;
  }
  return nullptr;
}

}  // namespace

const Value* find(const Value& root, std::string_view pointer) {
  const Value* node = &root;
  std::string scratch;
  std::string_view token;
  while (!pointer.empty()) {
    if (!next_token(pointer, token, scratch)) return nullptr;
    node = child(*node, token);
    if (!node) return nullptr;
  }
  return node;
}

Value* find_or_create(Value& root, std::string_view pointer) {
  Value* node = &root;
  std::string scratch;
  std::string_view token;
  while (!pointer.empty()) {
    if (!next_token(pointer, token, scratch)) return nullptr;
    if (node->is_null()) *node = Value::object();
    if (node->is_object()) {
      node = &(*node)[std::string(token)];
    } else if (node->is_array()) {
      size_t i = 0;
      if (token == "-" && pointer.empty()) {
        node->push_back(nullptr);
        node = &node->back();
      } else if (array_index(token, node->size(), i)) {
        node = &(*node)[i];
      } else {
        return nullptr;
      }
    } else {
      return nullptr;
    }
  }
  return node;
}

bool remove(Value& root, std::string_view pointer) {
  if (pointer.empty()) return false;
  auto slash = pointer.rfind('/');
  Value* parent = const_cast<Value*>(find(root, pointer.substr(0, slash)));
  if (!parent) return false;
  std::string scratch;
  std::string_view last = pointer.substr(slash), token;
  if (!next_token(last, token, scratch)) return false;
  if (parent->is_object()) {
    auto it = parent->find(token);
    if (it == parent->end()) return false;
    parent->erase(it);
    return true;
  }
  size_t i = 0;
  if (parent->is_array() && array_index(token, parent->size(), i)) {
    parent->erase(i);
    return true;
  }
  return false;
}

bool parse(std::string_view text, Value& out, std::string* error) {
  ParseError e;
  if (json::parse(text, out, ParseLimits::defaults(), &e)) return true;
  if (error) *error = std::move(e.message);
  return false;
}

}  // namespace ferry::json
