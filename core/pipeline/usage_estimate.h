#pragma once

#include <cstdint>
#include <string_view>

#include "core/json/parse.h"

namespace ferry::pipeline {

// Token counts the host stands behind when an upstream does not report
// usage (an OpenAI-compatible server that ignores stream_options, a stream
// the client abandoned or the host cut): accounting charges these instead of
// nothing. Estimates, not a tokenizer: about four bytes a token, never fewer
// tokens than words or than streamed pieces.

// A request's prompt: its messages' text (at least one token a word), four
// tokens of framing per message, its tools and response schema as text, and
// `image_tokens` per image part.
int64_t estimate_prompt_tokens(const json::Value& request, int64_t image_tokens = 1'000);

// What a stream forwarded of the answer: its text's bytes and the pieces
// (chunks with text) it came in. Every piece holds at least one token.
struct ForwardedText {
  uint64_t bytes = 0;
  uint64_t pieces = 0;
  void add(std::string_view chunk_json);
  int64_t estimate_tokens() const;
  // Whether a stream asked for at most `max_tokens` tokens (per choice, times
  // `choices`) has certainly passed them: more pieces than that (an honest
  // upstream never sends more), or far more text than that many tokens ever
  // hold (16 bytes each).
  bool past(int64_t max_tokens, int64_t choices) const;
};

}  // namespace ferry::pipeline
