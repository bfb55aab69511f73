// The Anthropic Messages request, translated into the canonical (OpenAI chat
// completions) request.
#pragma once

#include <string>

#include <ferry/plugin.hpp>

namespace ferry_anthropic {

struct Decoded {
  std::string canonical;  // the OpenAI request, as JSON text
  std::string error;      // the client's mistake (HTTP 400), when not empty
};

// `for_counting`: a count_tokens body (no max_tokens, never streamed).
Decoded to_canonical(const ferry::sdk::Json& body, bool for_counting);

}  // namespace ferry_anthropic
