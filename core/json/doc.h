#pragma once

#include <deque>
#include <string>
#include <string_view>

#include "core/json/parse.h"

namespace ferry::json {

// A JSON document as plugins see it through ferry_json. It holds text, a parsed
// tree, or both: the tree is built on the first field access and the text on
// the first whole-document access, and each stays cached until the next edit.
// A passthrough chunk that no plugin inspects is therefore never parsed.
// Used by one thread at a time (the request's worker).
class Doc {
 public:
  Doc() = default;
  // `limits` (default: ParseLimits::defaults()) must outlive the document.
  static Doc from_text(std::string text, const ParseLimits* limits = nullptr);
  static Doc from_value(Value value);
  // Both forms at once: the text is served as is until the tree is edited.
  static Doc from_parsed(std::string text, Value value);
  // Makes this document `text` again, unparsed, reusing its buffers: one
  // document can carry every event of a stream without an allocation each.
  void reset_text(std::string_view text, const ParseLimits* limits = nullptr);

  // The parsed tree, or nullptr when the text is not JSON (or exceeds the
  // document's limits; parse_error() says why).
  Value* value();
  const ParseError& parse_error() const { return error_; }
  bool parsed() const { return state_ == State::kParsed; }
  // Whether the document is a JSON object, without building a tree when it
  // has not been parsed yet (a validating scan of the text).
  bool is_object();
  // The document as compact JSON text.
  std::string_view text();
  // Drops the cached text after the tree returned by value() was edited.
  void changed();
  // How many times changed() was called: whether anyone edited the document
  // between two points.
  uint64_t generation() const { return generation_; }

  // Storage for views handed to plugins that are not slices of the tree
  // (serialized sub-values). Lives until clear_scratch().
  std::string_view keep(std::string s);
  void clear_scratch() { scratch_.clear(); }

  // Makes the document read-only and shareable between threads (provider
  // attributes seen by every worker's router): parsed and serialized now, and
  // views kept for plugins go to a per-thread store that the caller of the
  // hook empties with clear_thread_scratch().
  void freeze();
  bool frozen() const { return frozen_; }
  static void clear_thread_scratch();

 private:
  enum class State { kUnparsed, kParsed, kInvalid };
  std::string text_;
  bool has_text_ = false;
  Value value_;
  const ParseLimits* limits_ = nullptr;
  ParseError error_;
  State state_ = State::kParsed;
  bool frozen_ = false;
  uint64_t generation_ = 0;
  std::deque<std::string> scratch_;
};

// RFC 6901 lookups that never throw. `pointer` "" is the root.
const Value* find(const Value& root, std::string_view pointer);
// Creates missing parent objects; "-" as the last token appends to an array.
// Returns nullptr if a token cannot be created (e.g. a string parent).
Value* find_or_create(Value& root, std::string_view pointer);
bool remove(Value& root, std::string_view pointer);

// Parses within ParseLimits::defaults() without throwing; on failure returns
// false and a message with the byte offset of the problem.
bool parse(std::string_view text, Value& out, std::string* error);

}  // namespace ferry::json
