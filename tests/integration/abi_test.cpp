// ferryd and plugins of the wrong ABI, or that are not plugins at all.
#include <ferry/version.h>

#include <algorithm>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

std::string with_middleware_file(const std::string& file) {
  return "[middleware.extra]\nplugin = \"" + std::string(FERRY_TEST_ABI_PLUGIN_DIR) + "/" + file + "\"\n\n" +
         mock_pipeline("", "middleware = [\"extra\"]");
}

TEST(PluginAbi, FerrydRefusesAWrongMajorWithOneLineAndExitsTwo) {
  auto r = ferryd_refusing(with_middleware_file("ferry_middleware_wrong_major.so"));
  EXPECT_EQ(r.status, 2) << r.output;
  auto at = r.output.find(
      "ferry_middleware_wrong_major.so: built against Ferry ABI 2.0, but this ferryd speaks ABI " +
      std::to_string(FERRY_ABI_MAJOR) + "." + std::to_string(FERRY_ABI_MINOR));
  EXPECT_NE(at, std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/ferry.toml:2:10: [middleware.extra]: plugin /"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(PluginAbi, FerrydRefusesALibraryWithoutTheEntrySymbol) {
  auto r = ferryd_refusing(with_middleware_file("ferry_middleware_no_entry.so"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("not a Ferry plugin: it does not export ferry_plugin_negotiate"), std::string::npos)
      << r.output;
}

TEST(PluginAbi, APluginBuiltAgainstTheFrozen10HeadersStillWorks) {
  auto f = Ferryd::start(with_middleware_file("ferry_middleware_legacy.so"));
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-legacy-plugin"), "1.0");
}

}  // namespace
}  // namespace ferry::test
