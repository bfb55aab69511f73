#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ferry::json {

// Document order matters to users (golden files, upstream bodies they read
// in logs), so every JSON value in Ferry keeps its keys in insertion order.
using Value = nlohmann::ordered_json;

// Bounds on the shape of one JSON document. Every parse in Ferry has them:
// a document nested deeper than a worker's stack can recurse through (copy,
// dump, destroy) or with more members than a request should cost is refused
// at the first parse, before anything walks the tree.
struct ParseLimits {
  static constexpr uint32_t kDefaultDepth = 128;
  uint32_t max_depth = kDefaultDepth;  // containers inside containers; the top level is 1
  uint32_t max_object_keys = std::numeric_limits<uint32_t>::max();   // per object
  uint32_t max_array_items = std::numeric_limits<uint32_t>::max();   // per array
  uint64_t max_values = std::numeric_limits<uint64_t>::max();        // in the whole document
  uint64_t max_string_bytes = std::numeric_limits<uint64_t>::max();  // per string or key
  // A client request with the same key twice is refused (one reader would
  // take the first "model", another the last). Elsewhere the last one wins,
  // as with most parsers.
  bool reject_duplicate_keys = false;

  // What documents from upstreams, plugins and configuration get: the depth
  // bound only. Client requests get [limits] from the configuration.
  static const ParseLimits& defaults();
};

// Why a parse failed, for the error a client sees.
struct ParseError {
  enum class Kind { kNone, kSyntax, kLimit, kDuplicateKey };
  Kind kind = Kind::kNone;
  std::string message;  // printable ASCII: foreign bytes are shown as \xNN
  explicit operator bool() const { return kind != Kind::kNone; }
};

// Parses `text` as one JSON value within `limits`, in time linear in its size
// (objects are built without ordered_map's per-key search) and without
// throwing. Rejects what RFC 8259 rejects, and also what nlohmann alone
// would let through: a NUL byte (its lexer stops there) and a leading byte
// order mark. Numbers that overflow a double are refused. On failure `out`
// is null and `error` says what and where.
bool parse(std::string_view text, Value& out, const ParseLimits& limits, ParseError* error = nullptr);

// Compact JSON text of `v` that never throws: bytes that are not UTF-8 (in
// strings a plugin or an upstream put there) become U+FFFD.
std::string dump(const Value& v);

// `text` with every byte outside printable ASCII written as \xNN: for error
// messages and logs that quote what a peer sent.
std::string printable(std::string_view text, size_t max_bytes = 200);

}  // namespace ferry::json
