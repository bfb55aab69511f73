// json::parse: the one parser every body goes through, with the limits that
// keep a hostile but valid document from costing a worker its stack or its
// time.
#include <gtest/gtest.h>

#include <string>

#include "core/json/parse.h"

namespace ferry::json {
namespace {

std::string nested_arrays(size_t levels) {
  return "{\"a\":" + std::string(levels, '[') + std::string(levels, ']') + "}";
}

TEST(JsonParse, RefusesNestingPastTheLimitWithoutRecursing) {
  // 400,000 levels overflowed a worker's stack when the tree was copied or
  // dumped; the parse must stop at the limit, before any tree exists.
  Value v;
  ParseError e;
  ASSERT_FALSE(parse(nested_arrays(400'000), v, ParseLimits::defaults(), &e));
  EXPECT_EQ(e.kind, ParseError::Kind::kLimit);
  EXPECT_NE(e.message.find("nesting deeper than 128 at /a/0/0/0/0/0/..."), std::string::npos) << e.message;
  EXPECT_TRUE(v.is_null());

  ParseLimits shallow;
  shallow.max_depth = 3;
  EXPECT_TRUE(parse(nested_arrays(2), v, shallow));
  EXPECT_FALSE(parse(nested_arrays(3), v, shallow, &e));
}

TEST(JsonParse, BuildsLargeObjectsInOrderAndRefusesMoreKeysThanTheLimit) {
  std::string body = "{";
  for (int i = 0; i < 100'000; ++i)
    body += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  body += "}";
  Value v;
  ASSERT_TRUE(parse(body, v, ParseLimits::defaults()));
  ASSERT_EQ(v.size(), 100'000u);
  EXPECT_EQ(v.begin().key(), "k0");
  EXPECT_EQ((--v.end()).key(), "k99999");
  EXPECT_EQ(v["k4242"], 4242);

  ParseLimits limits;
  limits.max_object_keys = 1000;
  ParseError e;
  EXPECT_FALSE(parse(body, v, limits, &e));
  EXPECT_NE(e.message.find("an object with more keys than 1000 at the top level"), std::string::npos)
      << e.message;
}

TEST(JsonParse, RefusesDuplicateKeysWhenAskedElseTheLastWinsInTheFirstPlace) {
  const std::string small = R"({"model":"cheap","x":1,"model":"expensive"})";
  std::string large = R"({"model":"cheap")";
  for (int i = 0; i < 40; ++i) large += ",\"k" + std::to_string(i) + "\":0";
  large += R"(,"model":"expensive"})";
  for (const auto& text : {small, large}) {
    ParseLimits strict;
    strict.reject_duplicate_keys = true;
    Value v;
    ParseError e;
    ASSERT_FALSE(parse(text, v, strict, &e)) << text;
    EXPECT_EQ(e.kind, ParseError::Kind::kDuplicateKey);
    EXPECT_NE(e.message.find("duplicate key 'model'"), std::string::npos) << e.message;

    ASSERT_TRUE(parse(text, v, ParseLimits::defaults()));
    EXPECT_EQ(v["model"], "expensive");
    EXPECT_EQ(v.begin().key(), "model");
    EXPECT_EQ(
        std::count_if(v.items().begin(), v.items().end(), [](const auto& kv) { return kv.key() == "model"; }),
        1);
  }
}

TEST(JsonParse, RefusesNumbersADoubleCannotHoldAndSaysWhere) {
  Value v;
  ParseError e;
  ASSERT_FALSE(parse(R"({"temperature":1e400})", v, ParseLimits::defaults(), &e));
  EXPECT_NE(e.message.find("invalid JSON at byte"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("number overflow"), std::string::npos) << e.message;
  EXPECT_TRUE(parse(R"({"tiny":1e-400,"big":18446744073709551616})", v, ParseLimits::defaults()));
}

TEST(JsonParse, RefusesANulByteAndAByteOrderMark) {
  Value v;
  ParseError e;
  EXPECT_FALSE(parse(std::string("{\"a\":1}\0garbage", 15), v, ParseLimits::defaults(), &e));
  EXPECT_EQ(e.message, "invalid JSON at byte 7: a NUL byte");
  EXPECT_FALSE(parse("\xEF\xBB\xBF{}", v, ParseLimits::defaults(), &e));
  EXPECT_NE(e.message.find("byte order mark"), std::string::npos);
}

TEST(JsonParse, QuotesForeignBytesInItsMessagesAsEscapes) {
  Value v;
  ParseError e;
  ASSERT_FALSE(parse("{\"a\":\"\xff\xfe\"}", v, ParseLimits::defaults(), &e));
  for (char c : e.message) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << e.message;
  EXPECT_NE(e.message.find("\\xff"), std::string::npos) << e.message;
}

TEST(JsonParse, BoundsValuesArrayItemsAndStringBytes) {
  Value v;
  ParseError e;
  ParseLimits limits;
  limits.max_values = 10;
  EXPECT_TRUE(parse("[1,2,3,4,5,6,7,8,9]", v, limits));  // the array is the tenth value
  EXPECT_FALSE(parse("[1,2,3,4,5,6,7,8,9,10]", v, limits, &e));
  EXPECT_NE(e.message.find("more values than 10"), std::string::npos) << e.message;

  limits = {};
  limits.max_array_items = 3;
  EXPECT_TRUE(parse(R"({"m":[1,2,3]})", v, limits));
  EXPECT_FALSE(parse(R"({"m":[1,2,3,4]})", v, limits, &e));
  EXPECT_NE(e.message.find("an array with more items than 3 at /m"), std::string::npos) << e.message;

  limits = {};
  limits.max_string_bytes = 4;
  EXPECT_TRUE(parse(R"({"k":"abcd"})", v, limits));
  EXPECT_FALSE(parse(R"({"k":"abcde"})", v, limits, &e));
  EXPECT_FALSE(parse(R"({"abcde":1})", v, limits, &e));
  EXPECT_NE(e.message.find("a key longer than 4"), std::string::npos) << e.message;
}

// The host adds stream_options or rewrites the model at the top level: that
// must not grow the member vector, which would copy every subtree.
TEST(JsonParse, LeavesRoomAtTheTopLevelForTheHostsOwnKeys) {
  Value v;
  ASSERT_TRUE(
      parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})", v, ParseLimits::defaults()));
  auto& object = v.get_ref<Value::object_t&>();
  const auto* before = object.data();
  v["stream_options"]["include_usage"] = true;
  v["user"] = "u";
  EXPECT_EQ(object.data(), before);
}

TEST(JsonDump, NeverThrowsOnBytesThatAreNotUtf8) {
  Value v = {{"error", std::string("bad \xff bytes")}};
  EXPECT_EQ(dump(v), "{\"error\":\"bad \xEF\xBF\xBD bytes\"}");
}

}  // namespace
}  // namespace ferry::json
