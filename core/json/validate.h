#pragma once

#include <cstdint>
#include <string_view>

#include "core/json/parse.h"

namespace ferry::json {

// Whether `text` is exactly one JSON object (RFC 8259, UTF-8 strings, optional
// surrounding whitespace). A single pass over the bytes without allocating:
// the check every stream chunk passes before it is forwarded, about ten times
// cheaper than a general parser's accept(). It agrees with json::parse under
// ParseLimits::defaults() (a fuzzer checks): nesting deeper than max_depth
// and numbers that overflow a double are refused there too.
bool is_json_object(std::string_view text, uint32_t max_depth = ParseLimits::kDefaultDepth);

}  // namespace ferry::json
