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

// nlohmann's verdict: 1 object, 0 not, -1 out of its number range. RFC 8259
// sets no range for numbers; the scan accepts 1e999, nlohmann stops there.
int reference_verdict(std::string_view text) {
  try {
    return Value::parse(text).is_object() ? 1 : 0;
  } catch (const Value::out_of_range&) {
    return -1;
  } catch (const Value::exception&) {
    return 0;
  }
}
bool reference(std::string_view text) { return reference_verdict(text) == 1; }

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

TEST(JsonValidate, RefusesBytesAfterTheObject) {
  EXPECT_FALSE(is_json_object(std::string("{\"a\":1}\0", 8)));
  EXPECT_TRUE(is_json_object(R"({"big":1e999})"));  // valid JSON, if not a double
}

TEST(JsonValidate, RefusesNestingDeeperThan512) {
  std::string deep = "{\"a\":" + std::string(600, '[') + std::string(600, ']') + "}";
  EXPECT_FALSE(is_json_object(deep));
  std::string fine = "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_TRUE(is_json_object(fine));
}

// Thousands of damaged variants of real chunks: the scan and the parser must
// give the same verdict on every one.
TEST(JsonValidate, AgreesWithTheParserOnMutatedChunks) {
  std::mt19937 rng(20261123);
  const std::string alphabet = "{}[]\":,\\ -.0123456789eEtrufalsn\x01\x7f\xc3\xa9\xe2\x82\xac\xf0u";
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
    int verdict = reference_verdict(t);
    if (verdict < 0) continue;  // a number out of nlohmann's range: no verdict to compare
    ++compared;
    if (is_json_object(t) != (verdict == 1)) {
      ++disagreements;
      ADD_FAILURE() << "scan says " << is_json_object(t) << ", parser says " << reference(t) << " for: " << t;
      if (disagreements > 5) break;
    }
  }
  EXPECT_GT(compared, 19000u);
}

}  // namespace
}  // namespace ferry::json
