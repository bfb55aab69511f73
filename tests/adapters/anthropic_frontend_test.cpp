// The anthropic frontend's translations both ways, against golden files: an
// Anthropic Messages request into the canonical request, canonical answers
// and streams into Anthropic's message and event sequence. Streams are split
// at every boundary to show the events never depend on where chunks break.
#include "tests/adapters/frontend_harness.h"

namespace ferry::adapter_test {
namespace {

const util::Headers kNoHeaders;

std::unique_ptr<Frontend> anthropic() { return Frontend::load("anthropic"); }

// The events as golden files hold them: [{"event": name, "data": {...}}].
Json events_of(const std::vector<SseOut>& events) {
  Json out = Json::array();
  for (const auto& e : events)
    out.push_back({{"event", e.event}, {"data", Json::parse(e.data, nullptr, false)}});
  return out;
}

std::vector<std::string> chunks_of(const Json& golden_chunks) {
  std::vector<std::string> out;
  for (const auto& c : golden_chunks) out.push_back(c.dump());
  return out;
}

TEST(AnthropicFrontend, DecodesEveryFieldIntoTheCanonicalRequest) {
  auto fe = anthropic();
  ASSERT_TRUE(fe);
  auto d = fe->decode("POST", "/v1/messages", read_golden("frontends/anthropic/messages_full.request.json"));
  ASSERT_EQ(d.status, FERRY_OK) << d.error_message;
  EXPECT_TRUE(matches_golden(d.canonical, "frontends/anthropic/messages_full.expected.json"));
}

TEST(AnthropicFrontend, EncodesAStreamAsAnthropicsEventSequence) {
  auto fe = anthropic();
  ASSERT_TRUE(fe);
  auto e = fe->encode_stream(chunks_of(golden("frontends/anthropic/stream_text.chunks.json")), true);
  ASSERT_EQ(e.status, FERRY_OK);
  EXPECT_TRUE(matches_golden(events_of(e.events), "frontends/anthropic/stream_text.expected.json"));
}

TEST(AnthropicFrontend, EncodesStreamedToolCallsAsToolUseBlocks) {
  auto fe = anthropic();
  ASSERT_TRUE(fe);
  auto e = fe->encode_stream(chunks_of(golden("frontends/anthropic/stream_tools.chunks.json")), true);
  ASSERT_EQ(e.status, FERRY_OK);
  EXPECT_TRUE(matches_golden(events_of(e.events), "frontends/anthropic/stream_tools.expected.json"));
}

TEST(AnthropicFrontend, EncodesACompletionAsAMessage) {
  auto fe = anthropic();
  ASSERT_TRUE(fe);
  auto e = fe->encode_response(read_golden("frontends/anthropic/response_tools.completion.json"));
  ASSERT_EQ(e.status, FERRY_OK);
  EXPECT_EQ(e.whole.status, 200);
  EXPECT_TRUE(matches_golden(Json::parse(e.whole.body), "frontends/anthropic/response_tools.expected.json"));
}

TEST(AnthropicFrontend, EveryStatusGetsAnthropicsErrorType) {
  auto fe = anthropic();
  ASSERT_TRUE(fe);
  const std::vector<std::pair<int, std::string>> cases = {{400, "invalid_request_error"},
                                                          {401, "authentication_error"},
                                                          {403, "permission_error"},
                                                          {404, "not_found_error"},
                                                          {413, "request_too_large"},
                                                          {429, "rate_limit_error"},
                                                          {500, "api_error"},
                                                          {502, "api_error"},
                                                          {503, "overloaded_error"},
                                                          {504, "timeout_error"},
                                                          {422, "invalid_request_error"}};
  for (const auto& [status, type] : cases) {
    auto e = fe->encode_error(status, "whatever_openai_type", "went wrong", false);
    EXPECT_EQ(e.whole.status, status);
    auto body = Json::parse(e.whole.body);
    EXPECT_EQ(body["type"], "error");
    EXPECT_EQ(body["error"]["type"], type) << status;
    EXPECT_EQ(body["error"]["message"], "went wrong");
    EXPECT_NE(e.whole.headers.get("retry-after"), nullptr);
  }
  auto in_stream = fe->encode_error(529, "x", "overloaded", true);
  ASSERT_EQ(in_stream.events.size(), 1u);
  EXPECT_EQ(in_stream.events[0].event, "error");
  EXPECT_EQ(Json::parse(in_stream.events[0].data)["error"]["type"], "overloaded_error");
}

// The text the client reassembles, and a check that the events are a
// well-formed Anthropic stream: message_start first, blocks started before
// their deltas and stopped before message_delta, message_stop last.
std::string well_formed_text(const std::vector<SseOut>& events, std::string* partial_json = nullptr) {
  std::string text;
  bool open = false;
  int64_t open_index = -1;
  EXPECT_FALSE(events.empty());
  if (events.empty()) return text;
  EXPECT_EQ(events.front().event, "message_start");
  EXPECT_EQ(events.back().event, "message_stop");
  for (size_t i = 0; i < events.size(); ++i) {
    Json d = Json::parse(events[i].data);
    EXPECT_EQ(d.value("type", ""), events[i].event);
    if (events[i].event == "content_block_start") {
      EXPECT_FALSE(open) << "a block started inside another";
      open = true;
      open_index = d["index"];
    } else if (events[i].event == "content_block_delta") {
      EXPECT_TRUE(open);
      EXPECT_EQ(d["index"], open_index);
      if (d["delta"]["type"] == "text_delta") text += d["delta"]["text"].get<std::string>();
      if (d["delta"]["type"] == "input_json_delta" && partial_json)
        *partial_json += d["delta"]["partial_json"].get<std::string>();
    } else if (events[i].event == "content_block_stop") {
      EXPECT_TRUE(open);
      EXPECT_EQ(d["index"], open_index);
      open = false;
    } else if (events[i].event == "message_delta") {
      EXPECT_FALSE(open) << "message_delta with a block still open";
    }
  }
  return text;
}

std::string text_chunk(std::string_view piece) {
  return Json{
      {"id", "c"},
      {"object", "chat.completion.chunk"},
      {"model", "m"},
      {"choices", Json::array({{{"index", 0}, {"delta", {{"content", piece}}}, {"finish_reason", nullptr}}})}}
      .dump();
}

// At every boundary between two characters (every byte of the ASCII part).
TEST(AnthropicFrontend, AStreamSplitAnywhereReassemblesTheSameText) {
  auto fe = anthropic();
  ASSERT_TRUE(fe);
  const std::string text = "Ferries cross the bay, \xc3\xbc and \xf0\x9f\x9a\xa2 too.";
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80)
      continue;  // inside a character
    auto e = fe->encode_stream({text_chunk(text.substr(0, i)), text_chunk(text.substr(i))}, true);
    ASSERT_EQ(e.status, FERRY_OK);
    EXPECT_EQ(well_formed_text(e.events), text) << "split at " << i;
  }
}

TEST(AnthropicFrontend, ToolArgumentsSplitAnywhereReassembleTheSameInput) {
  auto fe = anthropic();
  ASSERT_TRUE(fe);
  const std::string args = R"({"query":"ferry timetable","days":[1,2]})";
  auto call = [](Json fn, bool first) {
    Json tc = {{"index", 0}, {"function", std::move(fn)}};
    if (first) {
      tc["id"] = "call_1";
      tc["type"] = "function";
    }
    return Json{{"id", "c"},
                {"object", "chat.completion.chunk"},
                {"model", "m"},
                {"choices", Json::array({{{"index", 0}, {"delta", {{"tool_calls", Json::array({tc})}}}}})}}
        .dump();
  };
  for (size_t i = 0; i <= args.size(); ++i) {
    auto e = fe->encode_stream({call({{"name", "lookup"}, {"arguments", args.substr(0, i)}}, true),
                                call({{"arguments", args.substr(i)}}, false)},
                               true);
    std::string partial;
    well_formed_text(e.events, &partial);
    EXPECT_EQ(partial, args) << "split at " << i;
    EXPECT_EQ(std::count_if(e.events.begin(), e.events.end(),
                            [](const SseOut& s) { return s.event == "content_block_start"; }),
              1)
        << "split at " << i;
  }
}

TEST(AnthropicFrontend, AnEmptyAnswerIsStillAWholeStream) {
  auto fe = anthropic();
  ASSERT_TRUE(fe);
  auto e = fe->encode_stream({}, true);
  ASSERT_GE(e.events.size(), 3u);
  EXPECT_EQ(well_formed_text(e.events), "");
}

}  // namespace
}  // namespace ferry::adapter_test
