// Every struct a 1.0, 1.1 or 1.2 plugin shares with this host has the layout
// that plugin was built with: the offsets of each member, compiled against the
// frozen headers in tests/abi/v1_N, equal the current header's (sdk/ABI.md
// R4). A member inserted mid-struct, or one moved, fails here.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include <ferry/ferry.h>

#include "tests/abi/layout_members.h"

extern "C" {
extern const size_t ferry_layout_v1_0[];
extern const size_t ferry_layout_v1_0_count;
extern const size_t ferry_layout_v1_1[];
extern const size_t ferry_layout_v1_1_count;
extern const size_t ferry_layout_v1_2[];
extern const size_t ferry_layout_v1_2_count;
}

namespace {

#define FERRY_OFFSET(type, member) offsetof(type, member),
#define FERRY_NAME(type, member) #type "." #member,

void expect_same_layout(const char* version, const size_t* frozen, size_t count,
                        const std::vector<size_t>& now, const std::vector<std::string>& names) {
  ASSERT_EQ(count, now.size()) << version;
  for (size_t i = 0; i < count; ++i)
    EXPECT_EQ(frozen[i], now[i]) << names[i] << " moved since ABI " << version;
}

TEST(AbiLayout, EveryStructOfTheFrozen10HeaderKeepsItsLayout) {
  expect_same_layout("1.0", ferry_layout_v1_0, ferry_layout_v1_0_count, {FERRY_LAYOUT_1_0(FERRY_OFFSET)},
                     {FERRY_LAYOUT_1_0(FERRY_NAME)});
}

TEST(AbiLayout, EveryStructOfTheFrozen11HeaderKeepsItsLayout) {
  expect_same_layout("1.1", ferry_layout_v1_1, ferry_layout_v1_1_count, {FERRY_LAYOUT_1_1(FERRY_OFFSET)},
                     {FERRY_LAYOUT_1_1(FERRY_NAME)});
}

TEST(AbiLayout, EveryStructOfTheFrozen12HeaderKeepsItsLayout) {
  expect_same_layout("1.2", ferry_layout_v1_2, ferry_layout_v1_2_count, {FERRY_LAYOUT_1_2(FERRY_OFFSET)},
                     {FERRY_LAYOUT_1_2(FERRY_NAME)});
}

}  // namespace
