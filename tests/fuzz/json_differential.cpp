// The validating scan (json::is_json_object, what every stream chunk passes)
// against the parser (json::parse): they must agree on every input. And what
// the parser accepts must survive json::dump and a second parse unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/json/parse.h"
#include "core/json/validate.h"
#include "fuzz_check.h"

namespace {

using ferry::fuzz::check;
using ferry::json::ParseLimits;
using ferry::json::Value;

bool printable_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c >= 0x7f) return false;
  return true;
}

// scan(text, depth) <=> parse(text, limits with that depth) gives an object.
void agree(std::string_view text, const ParseLimits& limits) {
  bool scan = ferry::json::is_json_object(text, limits.max_depth);
  Value value;
  ferry::json::ParseError error;
  bool parsed = ferry::json::parse(text, value, limits, &error);
  bool object = parsed && value.is_object();
  if (scan != object)
    ferry::fuzz::fail(scan ? "is_json_object accepts what parse refuses (or parses to a non-object)"
                           : "is_json_object refuses an object that parse accepts",
                      "depth " + std::to_string(limits.max_depth) +
                          ", parse: " + (parsed ? std::string(value.type_name()) : error.message) +
                          ", input: " + std::string(text));
  if (!parsed) {
    check(value.is_null(), "a failed parse left a value in `out`");
    check(static_cast<bool>(error), "a failed parse without an error kind");
    // parse.h: the message is printable ASCII (it goes into client errors).
    check(!error.message.empty() && printable_ascii(error.message), "parse error message not printable ASCII",
          error.message);
    return;
  }
  check(!error, "a successful parse reported an error", error.message);

  // dump never throws (it catches), and its output parses back to the same value.
  std::string text2;
  try {
    text2 = ferry::json::dump(value);
  } catch (...) {
    ferry::fuzz::fail("json::dump threw", std::string(text));
  }
  Value again;
  ferry::json::ParseError error2;
  if (!ferry::json::parse(text2, again, limits, &error2))
    ferry::fuzz::fail("dump's output does not parse", error2.message + " in: " + text2);
  check(again == value, "dump then parse gives a different value", text2);
  check(ferry::json::dump(again) == text2, "dump is not stable over a round trip", text2);
  check(ferry::json::is_json_object(text2, limits.max_depth) == object,
        "is_json_object disagrees with itself on dump's output", text2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = ferry::fuzz::bytes(data, size);
  agree(text, ParseLimits::defaults());
  // A shallow bound as well, so inputs of a fuzzer's size reach the depth
  // check on both sides (128 levels take 128 bytes at least).
  static const ParseLimits shallow = [] {
    ParseLimits l;
    l.max_depth = 3;
    return l;
  }();
  agree(text, shallow);
  return 0;
}
