#include "core/pipeline/usage_estimate.h"

#include <algorithm>

#include "core/pipeline/request_checks.h"

namespace ferry::pipeline {

using json::Value;

namespace {

int64_t text_tokens(std::string_view text) {
  int64_t words = 0;
  bool in_word = false;
  for (char c : text) {
    bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return std::max<int64_t>(words, static_cast<int64_t>((text.size() + 3) / 4));
}

int64_t content_tokens(const Value& content, int64_t image_tokens) {
  if (content.is_string()) return text_tokens(content.get_ref<const std::string&>());
  int64_t n = 0;
  if (!content.is_array()) return n;
  for (const Value& part : content) {
    const Value* type = member(part, "type");
    std::string_view t =
        type && type->is_string() ? std::string_view(type->get_ref<const std::string&>()) : "";
    if (t == "image_url" || t == "image" || t == "input_image") {
      n += image_tokens;
    } else if (const Value* text = member(part, "text"); text && text->is_string()) {
      n += text_tokens(text->get_ref<const std::string&>());
    } else {
      n += static_cast<int64_t>(json::dump(part).size() + 3) / 4;
    }
  }
  return n;
}

// The JSON string starting at text[at] (its opening quote): its length in bytes.
size_t string_bytes(std::string_view text, size_t at) {
  size_t i = at + 1;
  while (i < text.size() && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
  return i > at + 1 ? std::min(i, text.size()) - at - 1 : 0;
}

}  // namespace

int64_t estimate_prompt_tokens(const Value& request, int64_t image_tokens) {
  int64_t n = 0;
  if (const Value* messages = member(request, "messages"); messages && messages->is_array()) {
    for (const Value& m : *messages) {
      n += 4;
      if (const Value* content = member(m, "content")) n += content_tokens(*content, image_tokens);
      if (const Value* calls = member(m, "tool_calls"))
        n += static_cast<int64_t>(json::dump(*calls).size() + 3) / 4;
    }
  }
  if (const Value* input = member(request, "input")) n += content_tokens(*input, image_tokens);
  for (const char* key : {"tools", "functions", "response_format"})
    if (const Value* v = member(request, key)) n += static_cast<int64_t>(json::dump(*v).size() + 3) / 4;
  return n;
}

// A scan of the chunk's text, not a parse: most chunks are never parsed.
// It stops at each colon (a chunk has a dozen) and looks back for one of the
// keys that hold answer text, so it costs little more than one memchr pass.
void ForwardedText::add(std::string_view chunk) {
  auto ws = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  uint64_t before = bytes;
  size_t i = 0;
  while ((i = chunk.find(':', i)) != std::string_view::npos) {
    size_t colon = i++;
    size_t k = colon;
    while (k > 0 && ws(chunk[k - 1])) --k;
    std::string_view key = chunk.substr(0, k);
    if (!key.ends_with("\"content\"") && !key.ends_with("\"arguments\"") && !key.ends_with("\"refusal\"") &&
        !key.ends_with("\"reasoning_content\""))
      continue;
    size_t j = colon + 1;
    while (j < chunk.size() && ws(chunk[j])) ++j;
    if (j >= chunk.size() || chunk[j] != '"') continue;
    size_t n = string_bytes(chunk, j);
    bytes += n;
    i = j + n + 2;  // past the string: its colons are text
  }
  if (bytes > before) ++pieces;
}

int64_t ForwardedText::estimate_tokens() const {
  return std::max<int64_t>(static_cast<int64_t>(pieces), static_cast<int64_t>((bytes + 3) / 4));
}

bool ForwardedText::past(int64_t max_tokens, int64_t choices) const {
  auto bound = static_cast<uint64_t>(max_tokens) * static_cast<uint64_t>(std::max<int64_t>(1, choices));
  return pieces > bound || bytes > bound * 16 + 64;
}

}  // namespace ferry::pipeline
