// ferry/sdk/policy.hpp - Gateway conventions every built-in plugin agrees on: the text of a request, token
// estimates and bounds. Part of the C++ wrapper; include <ferry/plugin.hpp>, which includes every part in
// order.
#ifndef FERRY_SDK_POLICY_HPP
#define FERRY_SDK_POLICY_HPP

#ifndef FERRY_PLUGIN_HPP
#error "include <ferry/plugin.hpp>"
#endif

namespace ferry::sdk {

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

}  // namespace ferry::sdk

#endif  // FERRY_SDK_POLICY_HPP
