// Unit tests for the protocol-independent half of ferry-mock-upstream. The
// HTTP side (drip, extra_response, ...) is exercised through ferryd's
// integration tests; what is checked here is what those tests take on trust:
// that the directives parse the way README.md says, and that the gzip stream
// is one a real decoder accepts.
#include "mock_logic.h"

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace ferry::mock {
namespace {

ChatRequest parse_openai(std::string_view body) {
  ChatRequest req;
  auto err = parse_chat_request(body, ApiFormat::openai, req);
  EXPECT_FALSE(err) << *err;
  return req;
}

std::string all_events(SseStream& stream) {
  std::string out;
  while (stream.next(out)) {
  }
  return out;
}

// Runs the system's gzip on `data`; nullopt when there is no gzip to ask.
std::optional<std::string> system_gunzip(const std::string& data, int& exit_status) {
  if (std::system("command -v gzip >/dev/null 2>&1") != 0) return std::nullopt;
  char path[] = "/tmp/ferry-mock-gzip-XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0) return std::nullopt;
  ::close(fd);
  std::ofstream(path, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
  std::string cmd = std::string("gzip -dc < ") + path;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  for (std::size_t n; pipe && (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  exit_status = pipe ? ::pclose(pipe) : -1;
  std::remove(path);
  return out;
}

TEST(MockGzip, Crc32MatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(crc32(""), 0u);
}

TEST(MockGzip, StreamsAreAcceptedByGzip) {
  std::string big(200000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 251);
  // Empty, one block, exactly one full block, and several blocks.
  for (const std::string& data :
       {std::string{}, std::string{"{\"ok\":true}"}, std::string(65535, 'x'), big}) {
    std::string gz = gzip_stored(data);
    ASSERT_GE(gz.size(), 18u + data.size());
    EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
    int status = 0;
    auto plain = system_gunzip(gz, status);
    if (!plain) GTEST_SKIP() << "no gzip binary to check against";
    EXPECT_EQ(status, 0) << "gzip rejected a stream of " << data.size() << " bytes";
    EXPECT_EQ(*plain, data);
  }
}

TEST(MockFaults, DirectivesParseEveryNewKey) {
  std::string text =
      "hi "
      "[[fault:extra_response,echo_auth,gzip,invalid_utf8,usage_overflow,nul_suffix,no_usage,honor_max_"
      "tokens]]"
      " [[fault:extra_response_delay_ms=50,drip_ms=5,big_chunks=3,event_error=2,typed_error=start]]";
  Faults f = extract_fault_directives(text);
  EXPECT_EQ(text, "hi");
  EXPECT_TRUE(f.wants_extra_response());
  EXPECT_EQ(f.extra_response_delay(), 50);
  EXPECT_TRUE(f.is_echo_auth());
  EXPECT_TRUE(f.is_gzip());
  EXPECT_TRUE(f.is_invalid_utf8());
  EXPECT_TRUE(f.is_usage_overflow());
  EXPECT_TRUE(f.is_nul_suffix());
  EXPECT_TRUE(f.is_no_usage());
  EXPECT_TRUE(f.is_honor_max_tokens());
  EXPECT_EQ(f.drip(), 5);
  EXPECT_EQ(f.big_chunk_words(), 3);
  EXPECT_EQ(f.event_error, 2);
  EXPECT_EQ(f.typed_error, Faults::at_stream_start);
}

TEST(MockFaults, PositionsAndExtraResponseSwitches) {
  std::string text = "[[fault:event_error]] [[fault:typed_error=-7]]";
  Faults f = extract_fault_directives(text);
  EXPECT_EQ(f.event_error, 0);  // bare = right after the prelude
  EXPECT_TRUE(f.has_event_error());
  EXPECT_EQ(f.typed_error, -1);  // any negative is plain "off", never "start"
  EXPECT_FALSE(f.has_typed_error());

  Faults delayed_only;
  delayed_only.extra_response_delay_ms = 0;
  EXPECT_TRUE(delayed_only.wants_extra_response());
  Faults off = delayed_only;
  std::string directive = "[[fault:extra_response=false]]";
  off.override_with(extract_fault_directives(directive));
  EXPECT_FALSE(off.wants_extra_response());
  EXPECT_FALSE(Faults{}.wants_extra_response());
}

TEST(MockFaults, InstanceFaultsAcceptTheNewFieldsStrictly) {
  InstanceFaults out;
  EXPECT_FALSE(parse_instance_faults(
      R"({"extra_response":true,"extra_response_delay_ms":10,"echo_auth":true,"gzip":false,"invalid_utf8":true,
          "drip_ms":3,"event_error":"start","typed_error":4,"usage_overflow":true,"nul_suffix":true,
          "no_usage":false,"honor_max_tokens":true,"big_chunks":2})",
      out));
  EXPECT_EQ(out.faults.event_error, Faults::at_stream_start);
  EXPECT_EQ(out.faults.typed_error, 4);
  EXPECT_EQ(out.faults.drip(), 3);
  EXPECT_FALSE(out.faults.is_gzip());

  for (const char* bad : {R"({"gzip":1})", R"({"drip_ms":true})", R"({"event_error":"later"})",
                          R"({"typed_error":1.5})", R"({"big_chunk":2})", R"({"extra_response":"yes"})"}) {
    EXPECT_TRUE(parse_instance_faults(bad, out)) << bad;
  }
}

TEST(MockReply, InvalidUtf8GoesAfterTheFirstWord) {
  ChatRequest req = parse_openai(R"({"messages":[{"role":"user","content":"hello there"}]})");
  Faults f;
  f.invalid_utf8 = true;
  Reply r = make_reply(req, Options{}, f);
  EXPECT_EQ(r.text, "mock\xff\xfe\x80 reply: hello there");
  ASSERT_EQ(r.piece_count(), 4u);
  EXPECT_EQ(r.piece(0), "mock\xff\xfe\x80");
  EXPECT_EQ(r.piece(1), " reply:");
  EXPECT_EQ(r.completion_tokens, 4);
  std::string body = render_response(req, r, 1, 1700000000, f);
  EXPECT_NE(body.find("\"content\":\"mock\xff\xfe\x80 reply: hello there\""), std::string::npos);
}

TEST(MockReply, OpenAiMaxTokensOnlyWithHonorMaxTokens) {
  ChatRequest req = parse_openai(R"({"max_tokens":9,"max_completion_tokens":2,
                                    "messages":[{"role":"user","content":"a b c d"}]})");
  EXPECT_EQ(make_reply(req, Options{}).text, "mock reply: a b c d");
  Faults f;
  f.honor_max_tokens = true;
  Reply r = make_reply(req, Options{}, f);
  EXPECT_EQ(r.text, "mock reply:");  // max_completion_tokens wins
  EXPECT_EQ(r.stop_reason, "length");
  EXPECT_EQ(r.completion_tokens, 2);
}

TEST(MockReply, BigChunksGroupWords) {
  Options opts;
  opts.words = 7;
  ChatRequest req = parse_openai(R"({"messages":[{"role":"user","content":"x"}]})");
  Faults f;
  f.big_chunks = 3;
  Reply r = make_reply(req, opts, f);
  ASSERT_EQ(r.piece_count(), 3u);
  EXPECT_EQ(r.piece(0), "w1 w2 w3");
  EXPECT_EQ(r.piece(1), " w4 w5 w6");
  EXPECT_EQ(r.piece(2), " w7");
}

TEST(MockReply, UsageOverflowAndNoUsage) {
  ChatRequest req = parse_openai(R"({"messages":[{"role":"user","content":"hi"}]})");
  Reply r = make_reply(req, Options{});
  Faults overflow;
  overflow.usage_overflow = true;
  EXPECT_NE(render_response(req, r, 1, 0, overflow)
                .find(R"("usage":{"prompt_tokens":1e400,"completion_tokens":3,"total_tokens":1e400})"),
            std::string::npos);
  Faults none;
  none.no_usage = true;
  std::string body = render_response(req, r, 1, 0, none);
  EXPECT_EQ(body.find("usage"), std::string::npos);
  EXPECT_TRUE(nlohmann::json::accept(body));

  // Streamed: the overflowing usage chunk is sent unasked, no_usage wins.
  req.stream = true;
  SseStream unasked(req, r, 1, 0, overflow);
  EXPECT_NE(all_events(unasked).find(R"("prompt_tokens":1e400)"), std::string::npos);
  req.include_usage = true;
  Faults both = overflow;
  both.no_usage = true;
  SseStream suppressed(req, r, 1, 0, both);
  EXPECT_EQ(all_events(suppressed).find("usage"), std::string::npos);
  SseStream plain(req, r, 1, 0);
  EXPECT_NE(all_events(plain).find(R"("usage":{"prompt_tokens":1,)"), std::string::npos);
}

TEST(MockReply, RawErrorsKeepTheirBytes) {
  std::string msg = std::string("bad ") + std::string(invalid_utf8_bytes);
  EXPECT_EQ(render_error(ApiFormat::openai, 401, msg, true),
            "{\"error\":{\"message\":\"bad \xff\xfe\x80\",\"type\":\"invalid_request_error\","
            "\"code\":\"invalid_api_key\"}}");
  EXPECT_EQ(render_error(ApiFormat::openai, 503, "x", true), render_error(ApiFormat::openai, 503, "x"));
  EXPECT_EQ(render_error(ApiFormat::anthropic, 529, "x", true), render_error(ApiFormat::anthropic, 529, "x"));
  EXPECT_EQ(render_error(ApiFormat::openai, 429, "x", true), render_error(ApiFormat::openai, 429, "x"));
  EXPECT_EQ(render_error(ApiFormat::openai, 401, msg).find('\xff'), std::string::npos);
  EXPECT_EQ(echo_auth_message(ApiFormat::openai, "Bearer sk-1", "k2"),
            "Incorrect API key provided: Bearer sk-1 (x-api-key: k2)");
}

}  // namespace
}  // namespace ferry::mock
