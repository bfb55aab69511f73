// ferry/sdk/util.hpp - Small utilities plugins share: random numbers for routing, a stable hash, JSON string
// quoting, excerpts. Part of the C++ wrapper; include <ferry/plugin.hpp>, which includes every part in order.
#ifndef FERRY_SDK_UTIL_HPP
#define FERRY_SDK_UTIL_HPP

#ifndef FERRY_PLUGIN_HPP
#error "include <ferry/plugin.hpp>"
#endif

namespace ferry::sdk {

// A fast per-thread random source for routing decisions (splitmix64; not for
// secrets). Each thread starts from its own seed.
inline uint64_t random_u64() {
  thread_local uint64_t state = [] {
    uint64_t s = std::random_device{}();
    return (s << 32) ^ std::random_device{}() ^ reinterpret_cast<uintptr_t>(&s);
  }();
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
// Uniform in [0, 1).
inline double random_unit() { return static_cast<double>(random_u64() >> 11) * 0x1.0p-53; }
// Uniform in [0, n); n > 0.
inline size_t random_below(size_t n) { return static_cast<size_t>(random_unit() * static_cast<double>(n)); }

// FNV-1a: a stable hash for sticky decisions (the same key picks the same
// variant on every ferryd instance and across restarts).
inline uint64_t stable_hash(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// Appends s to out as a quoted JSON string.
// The length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no
// overlongs, no surrogates, nothing past U+10FFFF), or 0 if there is none.
inline size_t utf8_sequence(std::string_view s, size_t i) {
  auto at = [&](size_t k) { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0u; };
  unsigned c = at(i);
  auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) { return at(k) >= lo && at(k) <= hi; };
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c == 0xE0) return cont(i + 1, 0xA0) && cont(i + 2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(i + 1) && cont(i + 2) ? 3 : 0;
  if (c == 0xED) return cont(i + 1, 0x80, 0x9F) && cont(i + 2) ? 3 : 0;
  if (c == 0xF0) return cont(i + 1, 0x90) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c == 0xF4) return cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  return 0;
}

// `s` as a JSON string. Bytes that are not UTF-8 (an upstream's, a client's
// header) become U+FFFD: the text stays valid JSON whatever went in.
inline void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = utf8_sequence(s, i);
      if (n == 0) {
        out += "\\ufffd";
      } else {
        out.append(s.substr(i, n));
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(s[i]);
        }
    }
  }
  out.push_back('"');
}

// The start of `text` on one line, for quoting an upstream's answer in an
// error message without flooding the log.
inline std::string excerpt(std::string_view text, size_t max = 200) {
  std::string out(text.substr(0, max));
  for (auto& c : out)
    if (c == '\n' || c == '\r') c = ' ';
  if (text.size() > max) out += "...";
  return out;
}

inline std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_json_string(out, s);
  return out;
}

}  // namespace ferry::sdk

#endif  // FERRY_SDK_UTIL_HPP
