// The SDK writes JSON strings that stay valid whatever bytes go in: plugins
// quote upstream text and client headers, which may hold anything.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <ferry/plugin.hpp>

namespace {

std::string as_json_string(std::string_view s) {
  std::string out;
  ferry::sdk::append_json_string(out, s);
  return out;
}

TEST(SdkJsonString, KeepsUtf8AndEscapesWhatJsonNeeds) {
  EXPECT_EQ(as_json_string("caf\xc3\xa9 \xf0\x9f\x9a\xa2"), "\"caf\xc3\xa9 \xf0\x9f\x9a\xa2\"");
  EXPECT_EQ(as_json_string("a\"b\\c\n\x01"), R"("a\"b\\c\n\u0001")");
}

TEST(SdkJsonString, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  EXPECT_EQ(as_json_string("\xff"), R"("\ufffd")");
  EXPECT_EQ(as_json_string("caf\xe9!"), R"("caf\ufffd!")");                        // Latin-1
  EXPECT_EQ(as_json_string("\xc0\x80"), R"("\ufffd\ufffd")");                      // an overlong NUL
  EXPECT_EQ(as_json_string("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");            // a surrogate
  EXPECT_EQ(as_json_string("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // past U+10FFFF
  EXPECT_EQ(as_json_string("ok\xe2\x82"), R"("ok\ufffd\ufffd")");                  // cut short at the end
  // Whatever the input, the output parses.
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  EXPECT_FALSE(nlohmann::json::parse(as_json_string(all), nullptr, false).is_discarded());
}

}  // namespace
