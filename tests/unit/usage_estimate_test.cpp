// The host's estimate of usage an upstream did not report, and the bound a
// stream may not pass.
#include <gtest/gtest.h>

#include "core/pipeline/usage_estimate.h"

namespace ferry::pipeline {
namespace {

TEST(ForwardedText, CountsAnswerTextAndPiecesFromTheChunksText) {
  ForwardedText f;
  f.add(R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})");
  EXPECT_EQ(f.pieces, 0u) << "an empty delta is no piece";
  f.add(R"({"choices":[{"index":0,"delta":{"content":"a: b"},"finish_reason":null}]})");
  f.add(R"({"choices":[{"index":0,"delta":{"content" : "\"quoted\" text"}}]})");
  f.add(R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"q\":1}"}}]}}]})");
  EXPECT_EQ(f.pieces, 3u);
  EXPECT_EQ(f.bytes, 4u + 15u + 9u) << "escaped bytes counted as sent";
  EXPECT_EQ(f.estimate_tokens(), 7);
  f.add(R"({"choices":[],"usage":{"prompt_tokens":1}})");
  EXPECT_EQ(f.pieces, 3u);
}

TEST(ForwardedText, IsPastABoundOnceMorePiecesThanTokensArrived) {
  ForwardedText f;
  for (int i = 0; i < 5; ++i) f.add(R"({"choices":[{"delta":{"content":" w"}}]})");
  EXPECT_FALSE(f.past(5, 1));
  f.add(R"({"choices":[{"delta":{"content":" w"}}]})");
  EXPECT_TRUE(f.past(5, 1));
  EXPECT_FALSE(f.past(5, 2)) << "n choices: n times the tokens";
  ForwardedText big;
  big.add(R"({"choices":[{"delta":{"content":")" + std::string(200, 'x') + R"("}}]})");
  EXPECT_TRUE(big.past(5, 1)) << "far more text than 5 tokens hold";
}

TEST(PromptEstimate, NeverBelowTheWordsAndCountsToolsAndImages) {
  auto req = json::Value::parse(R"({"messages":[{"role":"user","content":"a a a a a a a a"},
    {"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"u"}}]}],
    "tools":[{"type":"function","function":{"name":"f"}}]})");
  int64_t n = estimate_prompt_tokens(req, 1000);
  EXPECT_GE(n, 8 + 1 + 1000 + 4 + 4);
}

}  // namespace
}  // namespace ferry::pipeline
