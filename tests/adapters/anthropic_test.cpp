// The anthropic provider: canonical (OpenAI chat-completions) requests are
// translated into Anthropic Messages requests, and Messages answers and
// stream events back into chat.completion objects and chunks.
#include <cstdlib>

#include <gtest/gtest.h>

#include "adapter_harness.h"

namespace ferry::adapter_test {
namespace {

using Kind = pipeline::SinkEvent::Kind;

constexpr const char* kKeyEnv = "FERRY_TEST_ANTHROPIC_KEY";
constexpr const char* kKey = "sk-ant-api03-ferry-test";

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class Anthropic : public ::testing::Test {
 protected:
  // The host reads each secret once per process and keeps it, so the value
  // is the same in every test.
  void SetUp() override {
    ::setenv(kKeyEnv, kKey, 1);
    adapter_ = make({{"api_key_env", kKeyEnv}});
    ASSERT_TRUE(adapter_);
  }

  std::unique_ptr<Adapter> make(const Json& options) {
    auto created = create_adapter("anthropic", options);
    EXPECT_TRUE(created.adapter) << created.messages();
    return std::move(created.adapter);
  }

  // build_request on golden/anthropic/build_request/<name>.input.json.
  Upstream build(const std::string& name) {
    auto input = read_golden("anthropic/build_request/" + name + ".input.json");
    auto up = adapter_->build_request(input);
    EXPECT_EQ(up.status, FERRY_OK);
    // The canonical request is read-only for providers.
    EXPECT_EQ(up.request_after, Json::parse(input)) << name;
    return up;
  }
  static std::string expected(const std::string& name) {
    return "anthropic/build_request/" + name + ".expected.json";
  }

  Result respond(int status, const std::string& name) {
    return adapter_->parse_response(status, read_golden("anthropic/parse_response/" + name + ".body.json"));
  }

  std::unique_ptr<Adapter> adapter_;
};

// ------------------------------------------------------------ build_request

TEST_F(Anthropic, TranslatesAPlainChat) {
  auto up = build("chat_plain");
  EXPECT_TRUE(matches_golden(up.body_json(), expected("chat_plain")));
}

TEST_F(Anthropic, SendsApiKeyAndVersionHeadersToTheMessagesEndpoint) {
  auto up = build("chat_plain");
  EXPECT_EQ(up.method, "POST");
  EXPECT_EQ(up.url, "https://api.anthropic.com/v1/messages");
  EXPECT_EQ(up.header("x-api-key"), kKey);
  EXPECT_TRUE(up.sensitive("x-api-key"));
  EXPECT_EQ(up.header("anthropic-version"), "2023-06-01");
  EXPECT_FALSE(up.sensitive("anthropic-version"));
  EXPECT_EQ(up.header("content-type"), "application/json");
  EXPECT_FALSE(up.has_header("authorization"));
  EXPECT_FALSE(up.streaming);
}

TEST_F(Anthropic, UsesTheConfiguredBaseUrlVersionAndModel) {
  auto a = make({{"api_key_env", kKeyEnv},
                 {"base_url", "https://gateway.example.com/anthropic/"},
                 {"version", "2023-01-01"},
                 {"model", "claude-opus-4-20250514"}});
  ASSERT_TRUE(a);
  auto up = a->build_request(read_golden("anthropic/build_request/chat_plain.input.json"));
  EXPECT_EQ(up.url, "https://gateway.example.com/anthropic/v1/messages");
  EXPECT_EQ(up.header("anthropic-version"), "2023-01-01");
  Json want = golden(expected("chat_plain"));
  want["model"] = "claude-opus-4-20250514";
  EXPECT_EQ(up.body_json(), want);
}

TEST_F(Anthropic, MergesSystemAndDeveloperMessagesIntoSystem) {
  auto up = build("system_developer");
  EXPECT_TRUE(matches_golden(up.body_json(), expected("system_developer")));
}

TEST_F(Anthropic, DefaultsMaxTokensWhenAbsent) {
  auto up = build("max_tokens_default");
  EXPECT_TRUE(matches_golden(up.body_json(), expected("max_tokens_default")));
}

TEST_F(Anthropic, UsesTheConfiguredMaxTokensDefault) {
  auto a = make({{"api_key_env", kKeyEnv}, {"max_tokens_default", 2048}});
  ASSERT_TRUE(a);
  auto up = a->build_request(read_golden("anthropic/build_request/max_tokens_default.input.json"));
  Json want = golden(expected("max_tokens_default"));
  want["max_tokens"] = 2048;
  EXPECT_EQ(up.body_json(), want);
}

TEST_F(Anthropic, PrefersMaxCompletionTokensOverMaxTokens) {
  auto up = build("max_completion_tokens");
  EXPECT_TRUE(matches_golden(up.body_json(), expected("max_completion_tokens")));
}

TEST_F(Anthropic, MergesConsecutiveSameRoleMessagesIntoOneTurn) {
  auto up = build("consecutive_roles");
  EXPECT_TRUE(matches_golden(up.body_json(), expected("consecutive_roles")));
}

TEST_F(Anthropic, TurnsDataUrlImagesIntoBase64BlocksAndOtherUrlsIntoUrlSources) {
  auto up = build("images");
  EXPECT_TRUE(matches_golden(up.body_json(), expected("images")));
}

TEST_F(Anthropic, TurnsAssistantToolCallsIntoToolUseBlocks) {
  auto up = build("tool_conversation");
  EXPECT_TRUE(matches_golden(up.body_json(), expected("tool_conversation")));
  // The arguments JSON string became the input object itself.
  Json body = up.body_json();
  const Json& use = body["messages"][1]["content"][0];
  EXPECT_EQ(use["type"], "tool_use");
  ASSERT_TRUE(use["input"].is_object());
  EXPECT_EQ(use["input"]["city"], "Paris");
}

TEST_F(Anthropic, MergesConsecutiveToolResultsIntoOneUserTurn) {
  auto up = build("tool_conversation");
  Json body = up.body_json();
  ASSERT_EQ(body["messages"].size(), 3u);
  const Json& turn = body["messages"][2];
  EXPECT_EQ(turn["role"], "user");
  ASSERT_EQ(turn["content"].size(), 2u);
  EXPECT_EQ(turn["content"][0]["type"], "tool_result");
  EXPECT_EQ(turn["content"][0]["tool_use_id"], "toolu_01A09q90qw90lq917835lq9");
  EXPECT_EQ(turn["content"][1]["type"], "tool_result");
  EXPECT_EQ(turn["content"][1]["tool_use_id"], "toolu_01B12r41rx41mr028946mr0");
}

TEST_F(Anthropic, PutsAUserMessageAfterToolResultsInTheSameUserTurn) {
  // Anthropic wants alternating turns with tool results first in the user turn.
  Json req = Json::parse(read_golden("anthropic/build_request/tool_conversation.input.json"));
  req["messages"].push_back({{"role", "user"}, {"content", "Which city is warmer?"}});
  auto up = adapter_->build_request(req);
  Json body = up.body_json();
  ASSERT_EQ(body["messages"].size(), 3u);
  const Json& turn = body["messages"][2];
  ASSERT_EQ(turn["content"].size(), 3u);
  EXPECT_EQ(turn["content"][0]["type"], "tool_result");
  EXPECT_EQ(turn["content"][1]["type"], "tool_result");
  EXPECT_EQ(turn["content"][2], Json::parse(R"({"type":"text","text":"Which city is warmer?"})"));
}

TEST_F(Anthropic, TranslatesToolsToInputSchemaAndRequiredToAny) {
  auto up = build("tools_required");
  EXPECT_TRUE(matches_golden(up.body_json(), expected("tools_required")));
}

TEST_F(Anthropic, TranslatesToolChoiceNone) {
  auto up = build("tool_choice_none");
  EXPECT_TRUE(matches_golden(up.body_json(), expected("tool_choice_none")));
}

TEST_F(Anthropic, TranslatesANamedToolChoiceToTool) {
  auto up = build("tool_choice_named");
  EXPECT_TRUE(matches_golden(up.body_json(), expected("tool_choice_named")));
}

TEST_F(Anthropic, TurnsAStopStringIntoStopSequences) {
  auto up = build("stop_string");
  EXPECT_TRUE(matches_golden(up.body_json(), expected("stop_string")));
}

TEST_F(Anthropic, PassesAStopArrayAsStopSequences) {
  auto up = build("stop_array");
  EXPECT_TRUE(matches_golden(up.body_json(), expected("stop_array")));
}

TEST_F(Anthropic, SendsUserAsMetadataUserId) {
  auto up = build("user_metadata");
  EXPECT_TRUE(matches_golden(up.body_json(), expected("user_metadata")));
}

TEST_F(Anthropic, ForwardsTheStreamFlagAndReadsTheAnswerAsAStream) {
  auto up = build("stream");
  EXPECT_TRUE(matches_golden(up.body_json(), expected("stream")));
  EXPECT_TRUE(up.streaming);
}

// ------------------------------------------------------------ parse_response

TEST_F(Anthropic, TranslatesATextMessageIntoAChatCompletion) {
  auto r = respond(200, "text");
  EXPECT_EQ(r.status, FERRY_OK);
  ASSERT_EQ(r.events.size(), 1u);
  ASSERT_EQ(r.events[0].kind, Kind::kResponse);
  EXPECT_TRUE(matches_golden(without_volatile(Json::parse(text(r.events[0]))),
                             "anthropic/parse_response/text.expected.json"));
}

TEST_F(Anthropic, StampsTheCompletionWithTheCurrentTime) {
  int64_t before = now_s();
  auto r = respond(200, "text");
  int64_t after = now_s();
  ASSERT_EQ(r.events.size(), 1u);
  Json completion = Json::parse(text(r.events[0]));
  ASSERT_TRUE(completion["created"].is_number_integer());
  EXPECT_GE(completion["created"].get<int64_t>(), before);
  EXPECT_LE(completion["created"].get<int64_t>(), after);
}

TEST_F(Anthropic, TurnsToolUseIntoToolCallsWithNullContent) {
  auto r = respond(200, "tool_use");
  ASSERT_EQ(r.events.size(), 1u);
  ASSERT_EQ(r.events[0].kind, Kind::kResponse);
  EXPECT_TRUE(matches_golden(without_volatile(Json::parse(text(r.events[0]))),
                             "anthropic/parse_response/tool_use.expected.json"));
}

TEST_F(Anthropic, KeepsTextAlongsideToolCalls) {
  auto r = respond(200, "text_and_tool_use");
  ASSERT_EQ(r.events.size(), 1u);
  ASSERT_EQ(r.events[0].kind, Kind::kResponse);
  EXPECT_TRUE(matches_golden(without_volatile(Json::parse(text(r.events[0]))),
                             "anthropic/parse_response/text_and_tool_use.expected.json"));
}

TEST_F(Anthropic, CountsCacheReadsAndWritesAsPromptTokens) {
  auto r = respond(200, "cache_usage");
  ASSERT_EQ(r.events.size(), 1u);
  ASSERT_EQ(r.events[0].kind, Kind::kResponse);
  EXPECT_TRUE(matches_golden(without_volatile(Json::parse(text(r.events[0]))),
                             "anthropic/parse_response/cache_usage.expected.json"));
}

TEST_F(Anthropic, MapsStopReasonsToFinishReasons) {
  Json body = golden("anthropic/parse_response/text.body.json");
  const std::pair<const char*, const char*> cases[] = {
      {"end_turn", "stop"},      {"max_tokens", "length"}, {"tool_use", "tool_calls"},
      {"stop_sequence", "stop"}, {"pause_turn", "stop"},   {"refusal", "content_filter"},
  };
  for (const auto& [stop_reason, finish_reason] : cases) {
    body["stop_reason"] = stop_reason;
    if (std::string_view(stop_reason) == "stop_sequence") body["stop_sequence"] = "###";
    auto r = adapter_->parse_response(200, body.dump());
    ASSERT_EQ(r.events.size(), 1u) << stop_reason;
    Json completion = Json::parse(text(r.events[0]));
    EXPECT_EQ(completion["choices"][0]["finish_reason"], finish_reason) << stop_reason;
  }
}

struct ErrorCase {
  const char* name;
  int status;
};
// How gtest (and so ctest) names the parameter.
void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name << ":" << c.status; }

class AnthropicErrorBody : public Anthropic, public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(AnthropicErrorBody, BecomesASinkErrorWithTheMappedStatusAndType) {
  std::string base = std::string("anthropic/parse_response/") + GetParam().name;
  auto r = adapter_->parse_response(GetParam().status, read_golden(base + ".body.json"));
  EXPECT_TRUE(matches_golden(r.json(), base + ".expected.json"));
}

// overloaded_error (HTTP 529) -> 503, so that the host fails over.
INSTANTIATE_TEST_SUITE_P(Anthropic, AnthropicErrorBody,
                         ::testing::Values(ErrorCase{"overloaded", 529}, ErrorCase{"rate_limited", 429},
                                           ErrorCase{"invalid_request", 400},
                                           ErrorCase{"authentication", 401}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(Anthropic, Maps529WithoutAnErrorBodyTo503) {
  auto r = adapter_->parse_response(529, "upstream overloaded");
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].kind, Kind::kError);
  EXPECT_EQ(r.events[0].status, 503);
  EXPECT_EQ(r.events[0].type, "server_error");
  EXPECT_EQ(r.events[0].message, "Anthropic HTTP 529: upstream overloaded");
}

TEST_F(Anthropic, TurnsA200ThatIsNotAMessageInto502) {
  for (const char* body : {"<html>oops</html>", R"({"type":"message","id":"msg_1"})"}) {
    auto r = adapter_->parse_response(200, body);
    ASSERT_EQ(r.events.size(), 1u) << body;
    EXPECT_EQ(r.events[0].kind, Kind::kError) << body;
    EXPECT_EQ(r.events[0].status, 502) << body;
    EXPECT_EQ(r.events[0].type, "upstream_error") << body;
  }
}

// ------------------------------------------------------------ streaming

TEST_F(Anthropic, StreamsTextAsCanonicalChunks) {
  auto r = adapter_->stream(read_golden("anthropic/stream/text.sse"));
  EXPECT_EQ(r.status, FERRY_OK);
  EXPECT_TRUE(matches_golden(without_volatile(r.json()), "anthropic/stream/text.expected.json"));
}

TEST_F(Anthropic, StampsEveryChunkOfAStreamWithTheSameCurrentTime) {
  int64_t before = now_s();
  auto r = adapter_->stream(read_golden("anthropic/stream/text.sse"));
  int64_t after = now_s();
  auto chunks = r.of(Kind::kChunk);
  ASSERT_FALSE(chunks.empty());
  int64_t created = Json::parse(text(*chunks[0]))["created"].get<int64_t>();
  EXPECT_GE(created, before);
  EXPECT_LE(created, after);
  for (const auto* c : chunks) EXPECT_EQ(Json::parse(text(*c))["created"], created);
}

TEST_F(Anthropic, StreamsToolUseWithInputJsonDeltas) {
  auto r = adapter_->stream(read_golden("anthropic/stream/tool_use.sse"));
  EXPECT_EQ(r.status, FERRY_OK);
  EXPECT_TRUE(matches_golden(without_volatile(r.json()), "anthropic/stream/tool_use.expected.json"));
  // The argument pieces concatenate to the tool input.
  std::string arguments;
  for (const auto* c : r.of(Kind::kChunk)) {
    Json delta = Json::parse(text(*c))["choices"][0]["delta"];
    if (delta.contains("tool_calls"))
      arguments += delta["tool_calls"][0]["function"]["arguments"].get<std::string>();
  }
  EXPECT_EQ(Json::parse(arguments), Json::parse(R"({"city":"Paris","unit":"celsius"})"));
}

TEST_F(Anthropic, TurnsAnErrorEventIntoASinkError) {
  auto r = adapter_->stream(read_golden("anthropic/stream/error.sse"));
  EXPECT_TRUE(matches_golden(without_volatile(r.json()), "anthropic/stream/error.expected.json"));
}

TEST_F(Anthropic, IgnoresUnknownEventTypes) {
  auto events = parse_sse(read_golden("anthropic/stream/text.sse"));
  ASSERT_GT(events.size(), 3u);
  // Anthropic may add event types at any time; clients are to skip them.
  events.insert(events.begin() + 3,
                Sse{"content_block_citation_preview",
                    R"({"type":"content_block_citation_preview","index":0,"preview":"x"})", ""});
  auto r = adapter_->stream(events);
  EXPECT_EQ(r.status, FERRY_OK);
  EXPECT_TRUE(matches_golden(without_volatile(r.json()), "anthropic/stream/text.expected.json"));
}

TEST_F(Anthropic, SkipsThinkingBlocksInAStream) {
  auto events = parse_sse(read_golden("anthropic/stream/text.sse"));
  ASSERT_GT(events.size(), 1u);
  std::vector<Sse> thinking = {
      {"content_block_start",
       R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}})", ""},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"A pun on atoms."}})",
       ""},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}})",
       ""},
      {"content_block_stop", R"({"type":"content_block_stop","index":0})", ""},
  };
  events.insert(events.begin() + 1, thinking.begin(), thinking.end());
  auto r = adapter_->stream(events);
  EXPECT_EQ(r.status, FERRY_OK);
  EXPECT_TRUE(matches_golden(without_volatile(r.json()), "anthropic/stream/text.expected.json"));
}

TEST_F(Anthropic, TurnsAnEventThatIsNotJsonIntoA502) {
  auto r = adapter_->stream(std::vector<Sse>{{"", "this is not json", ""}});
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].kind, Kind::kError);
  EXPECT_EQ(r.events[0].status, 502);
  EXPECT_EQ(r.events[0].type, "upstream_error");
}

TEST_F(Anthropic, RejectsAKnownEventWhoseDataIsNotJsonInsteadOfDroppingIt) {
  auto events = parse_sse(read_golden("anthropic/stream/text.sse"));
  ASSERT_GT(events.size(), 3u);
  // A text delta cut short: silently skipping it would lose part of the answer.
  events[3].data = R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Why do)";
  auto r = adapter_->stream(events);
  ASSERT_FALSE(r.events.empty());
  const auto& last = r.events.back();
  EXPECT_EQ(last.kind, Kind::kError);
  EXPECT_EQ(last.status, 502);
  EXPECT_EQ(last.type, "upstream_error");
  EXPECT_EQ(r.of(Kind::kDone).size(), 0u);
}

}  // namespace
}  // namespace ferry::adapter_test
