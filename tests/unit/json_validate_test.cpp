// The validating scan that guards every forwarded stream chunk must agree
// with a full JSON parser on what is a JSON object.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/json/doc.h"
#include "core/json/validate.h"

namespace ferry::json {
namespace {

// The parser's verdict under the default limits: what the host builds a tree
// from when a chunk is inspected after the scan passed it.
bool reference(std::string_view text) {
  Value v;
  return parse(text, v, ParseLimits::defaults()) && v.is_object();
}

const std::vector<std::string> kValid = {
    R"({})",
    R"( {"a":1} )",
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m",)"
    R"("choices":[{"index":0,"delta":{"content":" hi"},"finish_reason":null}],"usage":null})",
    R"({"n":[-0,0.5,1e10,-2.5E-3,12345678901234567890],"t":true,"f":false,"z":null,"e":[],"o":{}})",
    R"({"s":"quote \" slash \\ \/ \b\f\n\r\t \u00e9 \uD83D\uDE00 caf\u00E9"})",
    "{\"utf8\":\"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\"}",
    "{\n\t\"spaced\" :\r\n [ 1 , 2 ] \n}",
};

const std::vector<std::string> kInvalid = {
    "",
    "   ",
    "[]",
    "1",
    "\"s\"",
    "null",
    "{this is not json",
    R"({"a":1)",
    R"({"a":1}})",
    R"({"a":1},)",
    R"({"a" 1})",
    R"({"a":})",
    R"({,})",
    R"({"a":1,})",
    R"({'a':1})",
    R"({"a":[1,]})",
    R"({"a":01})",
    R"({"a":1.})",
    R"({"a":.5})",
    R"({"a":1e})",
    R"({"a":-})",
    R"({"a":+1})",
    R"({"a":tru})",
    R"({"a":nul})",
    R"({"a":"\x"})",
    R"({"a":"\u12"})",
    R"({"a":"\uDC00"})",
    R"({"a":"\uD800"})",
    R"({"a":"\uD800\u0041"})",
    "{\"a\":\"tab\tinside\"}",
    "{\"a\":\"\xC3\"}",
    "{\"a\":\"\xC0\x80\"}",
    "{\"a\":\"\xED\xA0\x80\"}",
    "{\"a\":\"\xF4\x90\x80\x80\"}",
    "{\"a\":\"\xFF\"}",
    R"({"a":1} x)",
    R"({"a":"unterminated})",
};

TEST(JsonValidate, AcceptsObjects) {
  for (const auto& t : kValid) {
    EXPECT_TRUE(is_json_object(t)) << t;
    EXPECT_TRUE(reference(t)) << "the test case itself is wrong: " << t;
  }
}

TEST(JsonValidate, RefusesEverythingElse) {
  for (const auto& t : kInvalid) {
    EXPECT_FALSE(is_json_object(t)) << t;
    EXPECT_FALSE(reference(t)) << "the test case itself is wrong: " << t;
  }
}

// nlohmann alone stops at a NUL byte and accepts what follows; the forwarded
// bytes would then carry it upstream.
TEST(JsonValidate, RefusesANulByteAndWhatFollowsLikeTheParser) {
  for (std::string t : {std::string("{\"a\":1}\0", 8), std::string("{\"a\":1}\0garbage", 15),
                        std::string("{\"a\":\"x\0y\"}", 11)}) {
    EXPECT_FALSE(is_json_object(t)) << printable(t);
    EXPECT_FALSE(reference(t)) << printable(t);
  }
}

// A double cannot hold 1e400: a validator that passed it would hand the engine
// a chunk its parser then refuses (a null tree where usage was expected).
TEST(JsonValidate, RefusesNumbersThatOverflowADoubleLikeTheParser) {
  for (const char* t : {R"({"big":1e999})", R"({"usage":{"prompt_tokens":1e400}})", R"({"n":-1.5e309})"}) {
    EXPECT_FALSE(is_json_object(t)) << t;
    EXPECT_FALSE(reference(t)) << t;
  }
  std::string digits = "{\"n\":" + std::string(400, '9') + "}";  // 1e400 written out
  EXPECT_FALSE(is_json_object(digits));
  EXPECT_FALSE(reference(digits));
  for (const char* t :
       {R"({"small":1e-400})", R"({"n":1.7976931348623157e308})", R"({"n":123456789012345678901})"}) {
    EXPECT_TRUE(is_json_object(t)) << t;
    EXPECT_TRUE(reference(t)) << t;
  }
}

TEST(JsonValidate, RefusesNestingDeeperThanTheDefaultLimitLikeTheParser) {
  auto nested = [](size_t levels) {  // the top-level object is level 1
    return "{\"a\":" + std::string(levels - 1, '[') + std::string(levels - 1, ']') + "}";
  };
  EXPECT_TRUE(is_json_object(nested(ParseLimits::kDefaultDepth)));
  EXPECT_TRUE(reference(nested(ParseLimits::kDefaultDepth)));
  EXPECT_FALSE(is_json_object(nested(ParseLimits::kDefaultDepth + 1)));
  EXPECT_FALSE(reference(nested(ParseLimits::kDefaultDepth + 1)));
}

// Thousands of damaged variants of real chunks: the scan and the parser must
// give the same verdict on every one.
TEST(JsonValidate, AgreesWithTheParserOnMutatedChunks) {
  std::mt19937 rng(20261123);
  const std::string alphabet =
      std::string("{}[]\":,\\ -.0123456789eEtrufalsn\x01\x7f\xc3\xa9\xe2\x82\xac\xf0u\xef\xbb\xbf") + '\0';
  size_t disagreements = 0;
  size_t compared = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string t = kValid[rng() % kValid.size()];
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !t.empty(); ++e) {
      size_t at = rng() % t.size();
      switch (rng() % 3) {
        case 0: t.erase(at, 1); break;
        case 1: t.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        default: t[at] = alphabet[rng() % alphabet.size()]; break;
      }
    }
    ++compared;
    if (is_json_object(t) != reference(t)) {
      ++disagreements;
      ADD_FAILURE() << "scan says " << is_json_object(t) << ", parser says " << reference(t) << " for: " << t;
      if (disagreements > 5) break;
    }
  }
  EXPECT_EQ(compared, 20000u);
}

}  // namespace
}  // namespace ferry::json
