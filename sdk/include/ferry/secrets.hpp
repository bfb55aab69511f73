// Masking credentials in text that goes to a client or a log. Header-only, C++
// standard library only: the host and plugins share it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ferry::sdk {

namespace detail {

struct KeyShape {
  std::string_view prefix;
  size_t min_run;  // characters of `charset` after the prefix for a match
  bool (*charset)(char);
};

inline bool alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
inline bool key_char(char c) { return alnum(c) || c == '_' || c == '-'; }
inline bool upper_alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); }
inline bool alnum_dash(char c) { return alnum(c) || c == '-'; }
inline bool token_char(char c) {
  return alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

// Provider keys (OpenAI and Anthropic sk-..., Ferry's own fk-..., AWS, GitHub,
// Slack, Google) and bearer credentials of any shape.
inline constexpr KeyShape kKeyShapes[] = {
    {"sk-", 16, key_char},     {"fk-", 16, key_char},      {"AKIA", 16, upper_alnum},
    {"ghp_", 20, alnum},       {"gho_", 20, alnum},        {"ghu_", 20, alnum},
    {"ghs_", 20, alnum},       {"ghr_", 20, alnum},        {"xoxa-", 10, alnum_dash},
    {"xoxb-", 10, alnum_dash}, {"xoxp-", 10, alnum_dash},  {"xoxr-", 10, alnum_dash},
    {"AIza", 30, key_char},    {"Bearer ", 8, token_char}, {"bearer ", 8, token_char},
};

}  // namespace detail

// `text` with every string shaped like a credential replaced by its prefix
// and "[REDACTED]" ("sk-[REDACTED]", "Bearer [REDACTED]"). Linear in the text
// (no regex: a long run of key characters costs one pass), for any input.
inline std::string mask_key_shaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    bool boundary = i == 0 || !detail::alnum(text[i - 1]);
    size_t end = 0;
    std::string_view prefix;
    if (boundary) {
      for (const auto& shape : detail::kKeyShapes) {
        if (text.compare(i, shape.prefix.size(), shape.prefix) != 0) continue;
        size_t j = i + shape.prefix.size();
        while (j < text.size() && shape.charset(text[j])) ++j;
        if (j - i - shape.prefix.size() >= shape.min_run) {
          end = j;
          prefix = shape.prefix;
        }
        break;
      }
    }
    if (end) {
      out.append(prefix).append("[REDACTED]");
      i = end;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

}  // namespace ferry::sdk
