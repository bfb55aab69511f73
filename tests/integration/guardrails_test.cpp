// The guardrails middleware through the real ferryd and the project's mock
// upstream, which echoes the prompt: input redaction seen upstream, blocking,
// flagging, and output redaction of streamed answers whose matches span
// several chunks.
#include "tests/integration/common.h"

namespace ferry::test {
namespace {

std::string guarded(const MockUpstream& up, const std::string& options) {
  return "[log]\nlevel = \"info\"\n\n" + openai_provider("up", up) +
         "[middleware.guard]\nplugin = \"guardrails\"\n" + options +
         "\n[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"up\"]\nmiddleware = [\"guard\"]\n";
}

std::string upstream_saw(const MockUpstream& up) {
  return up.stats()["last_request"]["body"]["messages"][0]["content"].get<std::string>();
}

TEST(Guardrails, RedactsBlocksAndFlagsWhatGoesIn) {
  MockUpstream up;
  auto f = Ferryd::start(
      guarded(up,
              "apply_to = \"input\"\npii = { email = \"redact\", card = \"redact\" }\n"
              "rules = [\n  { name = \"forbidden-word\", keywords = [\"forbidden\"], action = \"block\" },\n"
              "  { name = \"project-x\", regex = \"secret\\\\s+project\", action = \"flag\" },\n]\n"));
  auto r = http_post(f->address(), "/v1/chat/completions",
                     chat_body("m", "mail bob@example.com or pay 4111 1111 1111 1111"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(upstream_saw(up), "mail [REDACTED:email] or pay [REDACTED:card]");
  EXPECT_EQ(r.header("x-ferry-guardrails"), "email,card");

  // Digits that fail the Luhn check are not a card.
  http_post(f->address(), "/v1/chat/completions", chat_body("m", "order 4111 1111 1111 1112"));
  EXPECT_EQ(upstream_saw(up), "order 4111 1111 1111 1112");

  int before = up.requests();
  auto blocked = http_post(f->address(), "/v1/chat/completions", chat_body("m", "this is FORBIDDEN here"));
  EXPECT_EQ(blocked.status, 400);
  EXPECT_EQ(blocked.json()["error"]["code"], "content_blocked");
  EXPECT_NE(blocked.body.find("forbidden-word"), std::string::npos) << blocked.body;
  EXPECT_EQ(up.requests(), before) << "a blocked request never reaches the upstream";

  auto flagged = http_post(f->address(), "/v1/chat/completions", chat_body("m", "about the Secret  Project"));
  EXPECT_EQ(flagged.status, 200);
  EXPECT_EQ(flagged.header("x-ferry-guardrails"), "project-x");
  EXPECT_EQ(upstream_saw(up), "about the Secret  Project") << "flag does not change the text";
}

TEST(Guardrails, RedactsStreamedOutputAcrossChunkBoundaries) {
  MockUpstream up;
  auto f =
      Ferryd::start(guarded(up, "apply_to = \"output\"\npii = { card = \"redact\", email = \"redact\" }\n"));
  std::string prompt = "card 4111 1111 1111 1111 and ann@example.org thanks";
  auto s = http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", prompt, R"("stream":true)"));
  ASSERT_TRUE(s.ends_with_done()) << s.raw;
  // The mock streamed the echo word by word: the card came in four chunks.
  EXPECT_EQ(upstream_saw(up), prompt) << "input is not checked with apply_to = output";
  EXPECT_EQ(s.content(), "mock reply: card [REDACTED:card] and [REDACTED:email] thanks");
  EXPECT_EQ(s.raw.find("4111"), std::string::npos) << "no digit of the card reached the client";
  ASSERT_TRUE(f->log_line("tag.guardrails_output=\"card,email\"")) << f->output();

  auto whole = http_post(f->address(), "/v1/chat/completions", chat_body("m", prompt));
  EXPECT_EQ(whole.json()["choices"][0]["message"]["content"],
            "mock reply: card [REDACTED:card] and [REDACTED:email] thanks");
}

TEST(Guardrails, ABlockedStreamedAnswerEndsAsContentFiltered) {
  MockUpstream up;
  auto f = Ferryd::start(
      guarded(up, "apply_to = \"output\"\nrules = [{ keywords = [\"leak\"], action = \"block\" }]\n"));
  auto s = http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("m", "this would leak the whole plan", R"("stream":true)"));
  ASSERT_TRUE(s.ends_with_done()) << s.raw;
  EXPECT_EQ(s.content().find("leak"), std::string::npos) << s.content();
  EXPECT_EQ(s.chunks().back()["choices"][0]["finish_reason"], "content_filter") << s.raw;
}

TEST(Guardrails, ReportsABadRegexAtItsPosition) {
  MockUpstream up;
  auto r = ferryd_refusing(guarded(up, "rules = [{ regex = \"(unclosed\", action = \"block\" }]\n"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("is not a valid regular expression"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ferry.toml:"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace ferry::test
