#include <gtest/gtest.h>

#include "core/json/doc.h"

namespace ferry::json {
namespace {

TEST(JsonPointer, FindsMembersAndElementsWithEscapes) {
  Value v = Value::parse(R"({"a":{"b/c":[1,{"d~e":"x"}]},"":0})");
  EXPECT_EQ(*find(v, "/a/b~1c/0"), 1);
  EXPECT_EQ(*find(v, "/a/b~1c/1/d~0e"), "x");
  EXPECT_EQ(*find(v, "/"), 0);
  EXPECT_EQ(find(v, ""), &v);
  EXPECT_EQ(find(v, "/a/b~1c/2"), nullptr);
  EXPECT_EQ(find(v, "/a/b~1c/01"), nullptr);  // leading zeros are not indices
  EXPECT_EQ(find(v, "a"), nullptr);           // a pointer starts with '/'
}

TEST(JsonPointer, CreatesParentsAndAppendsWithDash) {
  Value v = Value::object();
  *find_or_create(v, "/stream_options/include_usage") = true;
  *find_or_create(v, "/list") = Value::array();
  *find_or_create(v, "/list/-") = 1;
  *find_or_create(v, "/list/-") = 2;
  EXPECT_EQ(v.dump(), R"({"stream_options":{"include_usage":true},"list":[1,2]})");
  Value s = "text";
  EXPECT_EQ(find_or_create(s, "/x"), nullptr);
}

TEST(JsonPointer, RemovesMembersAndElements) {
  Value v = Value::parse(R"({"a":[1,2,3],"b":1})");
  EXPECT_TRUE(remove(v, "/a/1"));
  EXPECT_TRUE(remove(v, "/b"));
  EXPECT_FALSE(remove(v, "/b"));
  EXPECT_FALSE(remove(v, ""));
  EXPECT_EQ(v.dump(), R"({"a":[1,3]})");
}

TEST(JsonDoc, KeepsTheOriginalTextUntilEdited) {
  std::string text = R"({ "b" : 1, "a" : 2 })";
  Doc d = Doc::from_text(text);
  ASSERT_NE(d.value(), nullptr);
  EXPECT_EQ(d.text(), text);  // parsing alone does not reformat
  (*d.value())["c"] = 3;
  d.changed();
  EXPECT_EQ(d.text(), R"({"b":1,"a":2,"c":3})");  // document order is kept
}

TEST(JsonDoc, ReportsTextThatIsNotJson) {
  Doc d = Doc::from_text("{not json");
  EXPECT_EQ(d.value(), nullptr);
  EXPECT_EQ(d.text(), "{not json");
  Value v;
  std::string why;
  EXPECT_FALSE(parse("{\"a\":", v, &why));
  EXPECT_NE(why.find("invalid JSON at byte"), std::string::npos) << why;
}

}  // namespace
}  // namespace ferry::json
