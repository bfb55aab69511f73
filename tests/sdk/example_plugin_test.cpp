// The out-of-tree example plugin (sdk/examples/word_filter), built against the
// installed SDK by the sdk.example.build test, loaded into the real ferryd.
#include "tests/integration/common.h"

namespace ferry::test {
namespace {

std::string config(const std::string& filter_block) {
  return "plugin_dirs = [\"" + std::string(FERRY_TEST_EXAMPLE_DIR) + "/word_filter\"]\n\n" + filter_block +
         mock_pipeline("", "middleware = [\"filter\"]");
}

TEST(ExamplePlugin, RefusesRequestsWithABannedWordAndTagsTheRest) {
  auto f = Ferryd::start(
      config("[middleware.filter]\nplugin = \"word-filter\"\nbanned = [\"Password\"]\ntag = \"ok\"\n"));
  auto refused = http_post(f->address(), "/v1/chat/completions", chat_body("m", "my password is hunter2"));
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(error_message(refused), "message contains the banned word 'password'");
  EXPECT_EQ(refused.json()["error"]["code"], "banned_word");

  auto allowed = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hello"));
  EXPECT_EQ(allowed.status, 200);
  EXPECT_EQ(allowed.header("x-word-filter"), "ok");
  EXPECT_EQ(allowed.json()["choices"][0]["message"]["content"], "Ferry mock reply: hello");
}

TEST(ExamplePlugin, ReportsItsOwnConfigErrorsAtTheirPosition) {
  auto r =
      ferryd_refusing(config("[middleware.filter]\nplugin = \"word-filter\"\nbanned = []\ncolour = 1\n"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("ferry.toml:5:10: banned in [middleware.filter]: needs at least one word"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("ferry.toml:6:10: colour in [middleware.filter]: unknown key 'colour'"),
            std::string::npos)
      << r.output;
}

TEST(ExampleRouter, SendsEachRequestToItsRegionFirst) {
  auto f =
      Ferryd::start("plugin_dirs = [\"" + std::string(FERRY_TEST_EXAMPLE_DIR) + "/region_router\"]\n" + R"(
[providers.us]
plugin = "mock"
reply_prefix = "us:"
attributes = { region = "us" }

[providers.eu]
plugin = "mock"
reply_prefix = "eu:"
attributes = { region = "eu" }

[pipelines.default]
models = ["m"]
providers = ["us", "eu"]
router = { plugin = "region", default = "us" }
)");
  auto answer = [&](const HeaderList& headers) {
    auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"), headers);
    return r.json()["choices"][0]["message"]["content"].get<std::string>();
  };
  EXPECT_EQ(answer({}), "us: x");
  EXPECT_EQ(answer({{"x-ferry-region", "eu"}}), "eu: x");
  EXPECT_EQ(answer({{"x-ferry-region", "asia"}}), "us: x");  // nobody there: the fallback chain
}

}  // namespace
}  // namespace ferry::test
