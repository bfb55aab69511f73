// ABI negotiation: what the host accepts and how it refuses what it must not
// load (sdk/ABI.md R1-R4), with real plugin files.
#include <gtest/gtest.h>

#include <string>

#include "core/plugin/plugin_library.h"

namespace ferry::plugin {
namespace {

const std::string kHostAbi = "ABI " + std::to_string(FERRY_ABI_MAJOR) + "." + std::to_string(FERRY_ABI_MINOR);

std::string abi_plugin(const std::string& name) {
  return std::string(FERRY_TEST_ABI_PLUGIN_DIR) + "/ferry_middleware_" + name + ".so";
}

TEST(AbiCheck, AcceptsTheSameVersion) { EXPECT_EQ(check_abi(1, 0, 1, 0), ""); }

TEST(AbiCheck, AcceptsAPluginBuiltAgainstAnOlderMinor) { EXPECT_EQ(check_abi(1, 3, 1, 0), ""); }

TEST(AbiCheck, RefusesAPluginBuiltAgainstANewerMinor) {
  auto why = check_abi(1, 0, 1, 2);
  EXPECT_NE(why.find("ABI 1.2"), std::string::npos) << why;
  EXPECT_NE(why.find("1.0"), std::string::npos) << why;
}

TEST(AbiCheck, RefusesADifferentMajorNamingBothVersions) {
  auto why = check_abi(1, 0, 2, 0);
  EXPECT_NE(why.find("ABI 2.0"), std::string::npos) << why;
  EXPECT_NE(why.find("ABI 1.0"), std::string::npos) << why;
  EXPECT_FALSE(check_abi(2, 0, 1, 5).empty());
}

TEST(PluginLoad, LoadsAPluginBuiltAgainstTheFrozen10HeaderIntoThisHost) {
  static_assert(FERRY_ABI_MAJOR == 1, "a new major needs its own frozen header and this test rewritten");
  std::string err;
  auto lib = PluginLibrary::load(abi_plugin("legacy"), &err);
  ASSERT_TRUE(lib) << err;
  EXPECT_EQ(lib->name(), "legacy");
  EXPECT_EQ(lib->kind(), FERRY_KIND_MIDDLEWARE);
  EXPECT_EQ(lib->abi_major(), 1u);
  EXPECT_EQ(lib->abi_minor(), 0u);
}

TEST(PluginLoad, LoadsABuiltInPluginBuiltWithTheCppWrapper) {
  std::string err;
  auto lib =
      PluginLibrary::load(std::string(FERRY_TEST_BUILTIN_PLUGIN_DIR) + "/ferry_provider_mock.so", &err);
  ASSERT_TRUE(lib) << err;
  EXPECT_EQ(lib->name(), "mock");
  EXPECT_EQ(lib->kind(), FERRY_KIND_PROVIDER);
  EXPECT_EQ(lib->abi_major(), static_cast<uint32_t>(FERRY_ABI_MAJOR));
  EXPECT_EQ(lib->abi_minor(), static_cast<uint32_t>(FERRY_ABI_MINOR));
}

TEST(PluginLoad, RefusesAWrongMajorWithOneLineNamingFileAndVersions) {
  std::string err;
  auto path = abi_plugin("wrong_major");
  EXPECT_FALSE(PluginLibrary::load(path, &err));
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("ABI 2.0"), std::string::npos) << err;
  EXPECT_NE(err.find(kHostAbi), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

TEST(PluginLoad, RefusesANewerMinor) {
  std::string err;
  EXPECT_FALSE(PluginLibrary::load(abi_plugin("newer_minor"), &err));
  EXPECT_NE(err.find("ABI 1.999"), std::string::npos) << err;
}

TEST(PluginLoad, RefusesALibraryWithoutTheEntrySymbol) {
  std::string err;
  auto path = abi_plugin("no_entry");
  EXPECT_FALSE(PluginLibrary::load(path, &err));
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find(FERRY_ENTRY_SYMBOL), std::string::npos) << err;
}

TEST(PluginLoad, RefusesAFileThatIsNotALibrary) {
  std::string err;
  EXPECT_FALSE(PluginLibrary::load(std::string(FERRY_TEST_ABI_PLUGIN_DIR) + "/../CTestTestfile.cmake", &err));
  EXPECT_NE(err.find("cannot load"), std::string::npos) << err;
}

TEST(Registry, FindsPluginsByKindAndName) {
  Registry r({FERRY_TEST_BUILTIN_PLUGIN_DIR});
  std::string err;
  EXPECT_TRUE(r.find(FERRY_KIND_ROUTER, "priority", &err)) << err;
  EXPECT_FALSE(r.find(FERRY_KIND_ROUTER, "no-such-router", &err));
  EXPECT_NE(err.find("ferry_router_no_such_router.so"), std::string::npos) << err;
  EXPECT_NE(err.find(FERRY_TEST_BUILTIN_PLUGIN_DIR), std::string::npos) << err;
}

TEST(Registry, RefusesAPathOfTheWrongKind) {
  Registry r({});
  std::string err;
  auto path = std::string(FERRY_TEST_BUILTIN_PLUGIN_DIR) + "/ferry_provider_mock.so";
  EXPECT_FALSE(r.find(FERRY_KIND_MIDDLEWARE, path, &err));
  EXPECT_NE(err.find("is a provider plugin, not a middleware plugin"), std::string::npos) << err;
}

}  // namespace
}  // namespace ferry::plugin

namespace ferry::plugin {
namespace {

const ferry_middleware_vtable& middleware_hooks(const std::string& name,
                                                std::shared_ptr<PluginLibrary>& keep) {
  std::string err;
  keep = PluginLibrary::load(std::string(FERRY_TEST_BUILTIN_PLUGIN_DIR) + "/ferry_middleware_" + name + ".so",
                             &err);
  EXPECT_TRUE(keep) << err;
  static const ferry_middleware_vtable none{};
  return keep ? *keep->info().middleware : none;
}

// The wrapper exports only the hooks a middleware or its filter_type
// overrides: the host then neither calls nor parses for the others (an
// on_chunk means a parse of every streamed chunk).
TEST(WrapperHooks, AMiddlewareExportsOnlyTheHooksItsFilterOverrides) {
  std::shared_ptr<PluginLibrary> lib;
  for (const char* name : {"budget", "rate_limit"}) {
    const auto& vt = middleware_hooks(name, lib);
    EXPECT_TRUE(vt.on_request && vt.on_complete) << name;
    EXPECT_EQ(vt.on_chunk, nullptr) << name << " never looks at a chunk";
    EXPECT_EQ(vt.on_response, nullptr) << name;
  }
  EXPECT_TRUE(middleware_hooks("rate_limit", lib).on_attempt);
  EXPECT_EQ(middleware_hooks("budget", lib).on_attempt, nullptr);
  const auto& guard = middleware_hooks("guardrails", lib);
  EXPECT_TRUE(guard.on_chunk && guard.on_response && guard.on_request);
  // An instance-level hook without a filter.
  const auto& logging = middleware_hooks("logging", lib);
  EXPECT_TRUE(logging.on_complete);
  EXPECT_EQ(logging.on_request, nullptr);
  EXPECT_EQ(logging.filter_new, nullptr);
}

}  // namespace
}  // namespace ferry::plugin
