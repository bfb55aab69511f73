/* Offsets of every member of the frozen ABI 1_1 headers, compiled against
 * those headers (tests/abi/v1_1). tests/unit/abi_layout_test.cpp compares them
 * with the current header's: a member moved or inserted mid-struct fails it. */
#include <stddef.h>

#include <ferry/ferry.h>

#include "layout_members.h"

#define FERRY_OFFSET(type, member) offsetof(type, member),
const size_t ferry_layout_v1_1[] = {FERRY_LAYOUT_1_1(FERRY_OFFSET)};
const size_t ferry_layout_v1_1_count = sizeof ferry_layout_v1_1 / sizeof ferry_layout_v1_1[0];
