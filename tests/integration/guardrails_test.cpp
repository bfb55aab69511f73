// The guardrails middleware through the real ferryd and the project's mock
// upstream, which echoes the prompt ("mock reply: " + prompt, streamed word by
// word): input redaction seen upstream, blocking, flagging, output redaction
// of streamed answers whose matches span several chunks, and inputs that a
// backtracking matcher could not survive.
#include <initializer_list>
#include <utility>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

// Equality of two long texts without printing a megabyte when they differ.
testing::AssertionResult same_text(const std::string& got, const std::string& want) {
  if (got == want) return testing::AssertionSuccess();
  size_t at = 0;
  while (at < got.size() && at < want.size() && got[at] == want[at]) ++at;
  return testing::AssertionFailure() << "texts of " << got.size() << " and " << want.size()
                                     << " characters differ at " << at << ": got \"" << got.substr(at, 60)
                                     << "\", want \"" << want.substr(at, 60) << "\"";
}

// n characters cycling through [A-Za-z0-9._%+-]: one word for the mock, with
// no '@', so no detector matches it until something is appended.
std::string email_characters(size_t n) {
  static const std::string kCycle = "aB3._%+-xY7";
  std::string out;
  out.reserve(n);
  while (out.size() < n) out += kCycle[out.size() % kCycle.size()];
  return out;
}

// Text with no digits and nothing a detector knows, about n characters long.
std::string filler(size_t n) {
  static const std::string kWords[] = {"the",  "quick", "brown", "fox",   "jumps",   "over",    "a",
                                       "lazy", "dog",   "while", "seven", "wizards", "quietly", "hum"};
  std::string out;
  for (size_t i = 0; out.size() < n; ++i) out += (out.empty() ? "" : " ") + kWords[i % std::size(kWords)];
  return out;
}

// Every PII detector, redacting, and a user rule with nested quantifiers over
// the same characters (a backtracking matcher explores every way to split the
// run between the two loops).
const char* kAllDetectors =
    "pii = { email = \"redact\", phone = \"redact\", card = \"redact\", api_key = \"redact\" }\n"
    "rules = [{ name = \"corp-host\", regex = \"([a-z0-9%+-]+[.]?)+[.]corp\\\\b\", action = \"redact\" }]\n";

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
  EXPECT_NE(r.output.find("ferry.toml:10:20: rules.0.regex in [middleware.guard]: is not a valid regular "
                          "expression (RE2 syntax): missing ): (unclosed"),
            std::string::npos)
      << r.output;
}

// The answer is several windows long (default window, 128); each card arrives
// as four chunks, all of them past the first window, where text is already
// being released, at offsets that put the release point inside them.
TEST(Guardrails, NeverReleasesPartOfACardStreamedPastTheFirstWindow) {
  MockUpstream up;
  auto f = Ferryd::start(guarded(up, "apply_to = \"output\"\npii = { card = \"redact\" }\n"));
  // The gaps also put the end of a chunk inside two of the cards at a
  // multiple of the window, where a hold-back that releases in bursts of 128
  // characters (instead of sliding) would cut them.
  std::pair<size_t, const char*> cards[] = {{290, "4539 1488 0343 6467"},
                                            {186, "5500 0000 0000 0004"},
                                            {180, "4111 1111 1111 1111"},
                                            {173, "6011 0009 9013 9424"}};
  std::string prompt, want = "mock reply: ";
  for (auto [gap, card] : cards) {
    std::string text = filler(gap);
    prompt += text + " " + card + " ";
    want += text + " [REDACTED:card] ";
  }
  prompt += filler(20);
  want += filler(20);
  ASSERT_GT(prompt.find("4539"), 2 * 128u) << "the first card comes after the first window";

  auto s = http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", prompt, R"("stream":true)"));
  ASSERT_TRUE(s.ends_with_done()) << s.raw;
  EXPECT_EQ(s.content(), want);
  for (const char* group : {"4539", "1488", "0343", "6467", "5500", "0000", "0004", "4111", "1111", "6011",
                            "0009", "9013", "9424"})
    EXPECT_EQ(s.raw.find(group), std::string::npos) << group << " reached the client: " << s.raw;
  EXPECT_GT(s.chunks().size(), 150u) << "the mock streams word by word";
  ASSERT_TRUE(f->log_line("tag.guardrails_output=\"card\"")) << f->output();

  auto whole = http_post(f->address(), "/v1/chat/completions", chat_body("m", prompt));
  EXPECT_EQ(whole.json()["choices"][0]["message"]["content"], want);
}

// A window only a little longer than the card: the release point falls inside
// a card on most chunks, so any card released in part shows up here.
TEST(Guardrails, CatchesEveryCardWithAWindowBarelyLongerThanOne) {
  MockUpstream up;
  auto f =
      Ferryd::start(guarded(up, "apply_to = \"output\"\nstream_window = 24\npii = { card = \"redact\" }\n"));
  const char* cards[] = {"4111 1111 1111 1111", "4539 1488 0343 6467", "5500 0000 0000 0004",
                         "6011 0009 9013 9424"};
  std::string prompt, want = "mock reply: ";
  for (size_t i = 0; i < std::size(cards); ++i) {
    // Different gaps put the cards at different offsets from the window.
    std::string gap = filler(40 + 17 * i);
    prompt += gap + " " + cards[i] + " ";
    want += gap + " [REDACTED:card] ";
  }
  prompt += "end";
  want += "end";
  ASSERT_GT(prompt.size(), 200u);

  auto s = http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", prompt, R"("stream":true)"));
  ASSERT_TRUE(s.ends_with_done()) << s.raw;
  EXPECT_EQ(s.content(), want);
  for (const char* group : {"4111", "1111", "4539", "1488", "0343", "6467", "5500", "0000", "0004", "6011",
                            "0009", "9013", "9424"})
    EXPECT_EQ(s.raw.find(group), std::string::npos) << group << " reached the client: " << s.raw;
}

// A match that keeps growing would hold the stream back without end; past
// 4 x stream_window what has arrived of it is redacted and the rest is
// checked afresh, so the client keeps receiving text.
TEST(Guardrails, RedactsAMatchTooLongToHoldBackAsItStands) {
  MockUpstream up;
  auto f = Ferryd::start(guarded(up,
                                 "apply_to = \"output\"\nstream_window = 24\n"
                                 "rules = [{ name = \"spell\", regex = \"SECRET( [a-z]+)+\", ignore_case = "
                                 "false, action = \"redact\" }]\n"));
  std::string spell = filler(300);
  std::string prompt = "say SECRET " + spell + " DONE";

  auto whole = http_post(f->address(), "/v1/chat/completions", chat_body("m", prompt));
  EXPECT_EQ(whole.json()["choices"][0]["message"]["content"], "mock reply: say [REDACTED:spell] DONE");

  auto s = http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", prompt, R"("stream":true)"));
  ASSERT_TRUE(s.ends_with_done()) << s.raw;
  // What follows the redaction is the rest of the answer, unaltered, and the
  // cut is at least 4 x 24 characters into the match ("SECRET " is 7).
  std::string got = s.content(), redacted = "mock reply: say [REDACTED:spell]";
  ASSERT_TRUE(got.starts_with(redacted)) << got;
  std::string rest = got.substr(redacted.size());
  EXPECT_TRUE((" " + spell + " DONE").ends_with(rest)) << got;
  EXPECT_LE(rest.size(), spell.size() + 6 - (4 * 24 - 7)) << got;
  EXPECT_GT(rest.size(), std::string(" DONE").size()) << "the stream went on after the cut: " << got;
  EXPECT_EQ(s.raw.find("SECRET"), std::string::npos) << s.raw;
}

// A 32 KB run of e-mail characters overflowed std::regex's stack and took
// ferryd down; 1 MB is well under the 4 MiB body limit. Checked on input:
// the upstream sees the prompt, redacted when the run is an address.
TEST(Guardrails, SurvivesLongRunsOfEmailCharactersInThePrompt) {
  MockUpstream up;
  auto f = Ferryd::start(guarded(up, std::string("apply_to = \"input\"\n") + kAllDetectors));
  for (size_t n : {size_t{32} << 10, size_t{1} << 20})
    for (bool stream : {false, true})
      for (bool address : {false, true}) {
        SCOPED_TRACE(std::to_string(n) + " characters, stream " + std::to_string(stream) + ", address " +
                     std::to_string(address));
        std::string prompt = email_characters(n) + (address ? "@example.com" : "");
        std::string seen = address ? "[REDACTED:email]" : prompt;
        std::string body = chat_body("m", prompt, stream ? R"("stream":true)" : "");
        std::string answer;
        if (stream) {
          auto s = http_post_sse(f->address(), "/v1/chat/completions", body);
          ASSERT_EQ(s.status, 200) << s.error;
          ASSERT_TRUE(s.ends_with_done());
          answer = s.content();
        } else {
          auto r = http_post(f->address(), "/v1/chat/completions", body);
          ASSERT_EQ(r.status, 200) << r.error << r.body.substr(0, 300);
          answer = r.json()["choices"][0]["message"]["content"].get<std::string>();
        }
        EXPECT_TRUE(same_text(upstream_saw(up), seen));
        EXPECT_TRUE(same_text(answer, "mock reply: " + seen));
        expect_healthy(f->address());
      }
}

// The same runs in the model's answer: any output with a long base64 or hex
// run must not take the gateway down.
TEST(Guardrails, SurvivesLongRunsOfEmailCharactersInTheAnswer) {
  MockUpstream up;
  auto f = Ferryd::start(guarded(up, std::string("apply_to = \"output\"\n") + kAllDetectors));
  for (size_t n : {size_t{32} << 10, size_t{1} << 20})
    for (bool stream : {false, true})
      for (bool address : {false, true}) {
        SCOPED_TRACE(std::to_string(n) + " characters, stream " + std::to_string(stream) + ", address " +
                     std::to_string(address));
        std::string prompt = email_characters(n) + (address ? "@example.com" : "");
        std::string want = "mock reply: " + (address ? std::string("[REDACTED:email]") : prompt);
        std::string body = chat_body("m", prompt, stream ? R"("stream":true)" : "");
        if (stream) {
          auto s = http_post_sse(f->address(), "/v1/chat/completions", body);
          ASSERT_EQ(s.status, 200) << s.error;
          ASSERT_TRUE(s.ends_with_done());
          EXPECT_TRUE(same_text(s.content(), want));
        } else {
          auto r = http_post(f->address(), "/v1/chat/completions", body);
          ASSERT_EQ(r.status, 200) << r.error << r.body.substr(0, 300);
          EXPECT_TRUE(same_text(r.json()["choices"][0]["message"]["content"].get<std::string>(), want));
        }
        EXPECT_TRUE(same_text(upstream_saw(up), prompt)) << "input is not checked with apply_to = output";
        expect_healthy(f->address());
      }
}

// A pattern that backtracks exponentially on "aaa...ab" is one linear pass
// for RE2: the request is answered and the rule still blocks what it matches.
TEST(Guardrails, ANestedQuantifierRuleAnswersHostileInput) {
  MockUpstream up;
  auto f = Ferryd::start(guarded(
      up, "rules = [{ name = \"nested\", regex = \"(a+)+$\", ignore_case = false, action = \"block\" }]\n"));
  std::string hostile = std::string(32 << 10, 'a') + "b";
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", hostile));
  ASSERT_EQ(r.status, 200) << r.error << r.body.substr(0, 300);
  EXPECT_TRUE(
      same_text(r.json()["choices"][0]["message"]["content"].get<std::string>(), "mock reply: " + hostile));

  auto s = http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", hostile, R"("stream":true)"));
  ASSERT_TRUE(s.ends_with_done()) << s.error;
  EXPECT_TRUE(same_text(s.content(), "mock reply: " + hostile));

  auto blocked = http_post(f->address(), "/v1/chat/completions", chat_body("m", std::string(32 << 10, 'a')));
  EXPECT_EQ(blocked.status, 400);
  EXPECT_EQ(blocked.json()["error"]["code"], "content_blocked");
  expect_healthy(f->address());
}

// Rules are RE2 syntax now: what ECMAScript had and RE2 lacks is refused at
// load, at the rule's position, naming the construct.
TEST(Guardrails, RefusesRegexFeaturesThatRE2DoesNotSupport) {
  MockUpstream up;
  std::pair<const char*, const char*> cases[] = {
      {R"((a)\\1)", "uses a backreference (\\1), which RE2 does not support"},
      {R"(foo(?=bar))", "uses a lookahead (?=...), which RE2 does not support"},
      {R"(foo(?!bar))", "uses a negative lookahead (?!...), which RE2 does not support"},
      {R"((?<=\\$)\\d+)", "uses a lookbehind (?<=...), which RE2 does not support"},
      {R"((?<!x)y)", "uses a negative lookbehind (?<!...), which RE2 does not support"},
      {R"((?<id>x)\\k<id>)",
       "uses a named group (?<name>...), which RE2 does not support; write (?P<name>...)"},
      {R"(\\u0041)", "uses a \\u escape, which RE2 does not support; write a code point as \\x{hhhh}"},
  };
  for (auto [regex, message] : cases) {
    SCOPED_TRACE(regex);
    auto r = ferryd_refusing(guarded(
        up, std::string("rules = [{ name = \"r\", regex = \"") + regex + "\", action = \"block\" }]\n"));
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.output.find(std::string("ferry.toml:10:32: rules.0.regex in [middleware.guard]: ") + message),
              std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find("no rules"), std::string::npos) << "one error per mistake: " << r.output;
  }
  // The same constructs inside a character class are plain characters.
  auto ok = Ferryd::start(guarded(up, "rules = [{ regex = \"[(?=]x\", action = \"flag\" }]\n"));
  auto r = http_post(ok->address(), "/v1/chat/completions", chat_body("m", "a =x"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-ferry-guardrails"), "rule1");
}

}  // namespace
}  // namespace ferry::test
