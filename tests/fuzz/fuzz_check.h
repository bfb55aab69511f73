// What the fuzz targets share: a check that stops the run with a message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "core/json/parse.h"

namespace ferry::fuzz {

inline std::string_view bytes(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// An invariant broke: say which and stop, so libFuzzer keeps the input as a
// crash file. __builtin_trap rather than abort(): no handler can swallow it.
[[noreturn]] inline void fail(std::string_view what, std::string_view detail = {}) {
  std::fprintf(stderr, "\n==ferry-fuzz== invariant broken: %.*s\n", static_cast<int>(what.size()),
               what.data());
  if (!detail.empty()) std::fprintf(stderr, "==ferry-fuzz== %s\n", json::printable(detail, 2000).c_str());
  std::fflush(stderr);
  __builtin_trap();
}

inline void check(bool ok, std::string_view what, std::string_view detail = {}) {
  if (!ok) fail(what, detail);
}

// A small deterministic generator, seeded from the input, for choices that
// must not consume the input's bytes (split points).
class Rng {
 public:
  explicit Rng(std::string_view seed) {
    for (unsigned char c : seed) state_ = (state_ ^ c) * 0x100000001b3ull;  // FNV-1a
  }
  uint64_t next() {  // splitmix64
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }

 private:
  uint64_t state_ = 0xcbf29ce484222325ull;
};

}  // namespace ferry::fuzz
