#include "core/json/validate.h"

#include <cmath>
#include <cstdlib>
#include <string>

namespace ferry::json {
namespace {

class Validator {
 public:
  Validator(std::string_view text, uint32_t max_depth)
      : p_(reinterpret_cast<const unsigned char*>(text.data())),
        end_(p_ + text.size()),
        max_depth_(max_depth) {}

  bool object_document() {
    skip_ws();
    if (p_ == end_ || *p_ != '{' || !value(0)) return false;
    skip_ws();
    return p_ == end_;
  }

 private:
  void skip_ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool value(int depth) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{': return object(depth + 1);
      case '[': return array(depth + 1);
      case '"': return string();
      case 't': return literal("true", 4);
      case 'f': return literal("false", 5);
      case 'n': return literal("null", 4);
      default: return number();
    }
  }

  bool object(int depth) {
    if (static_cast<uint32_t>(depth) > max_depth_) return false;
    ++p_;  // '{'
    skip_ws();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      skip_ws();
      if (p_ == end_ || *p_ != '"' || !string()) return false;
      skip_ws();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      skip_ws();
      if (!value(depth)) return false;
      skip_ws();
      if (p_ == end_) return false;
      if (*p_ == '}') {
        ++p_;
        return true;
      }
      if (*p_ != ',') return false;
      ++p_;
    }
  }

  bool array(int depth) {
    if (static_cast<uint32_t>(depth) > max_depth_) return false;
    ++p_;  // '['
    skip_ws();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      skip_ws();
      if (!value(depth)) return false;
      skip_ws();
      if (p_ == end_) return false;
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      if (*p_ != ',') return false;
      ++p_;
    }
  }

  bool literal(const char* word, int len) {
    if (end_ - p_ < len) return false;
    for (int i = 0; i < len; ++i)
      if (p_[i] != static_cast<unsigned char>(word[i])) return false;
    p_ += len;
    return true;
  }

  bool digits() {
    const unsigned char* start = p_;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    return p_ != start;
  }

  bool number() {
    const unsigned char* start = p_;
    if (p_ != end_ && *p_ == '-') ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (!digits()) {
      return false;
    }
    bool simple = p_ - start <= 18;  // surely an integer that fits
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (!digits()) return false;
      simple = false;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return false;
      simple = false;
    }
    return simple || finite(start);
  }

  // Whether the number from `start` to p_ fits a double, as the parser
  // requires (1e400 is refused there: it must be here too).
  bool finite(const unsigned char* start) const {
    std::string text(reinterpret_cast<const char*>(start), static_cast<size_t>(p_ - start));
    return std::isfinite(std::strtod(text.c_str(), nullptr));
  }

  int hex4() {
    if (end_ - p_ < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; ++i) {
      unsigned char c = *p_++;
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    return v;
  }

  // One multi-byte UTF-8 sequence starting at p_ (RFC 3629: no overlongs, no
  // surrogates, nothing above U+10FFFF).
  bool utf8() {
    unsigned char c = *p_;
    int follow;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      follow = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      follow = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      follow = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (end_ - p_ <= follow) return false;
    ++p_;
    for (int i = 0; i < follow; ++i, ++p_) {
      unsigned char b = *p_;
      if (b < (i == 0 ? lo : 0x80) || b > (i == 0 ? hi : 0xBF)) return false;
    }
    return true;
  }

  bool string() {
    ++p_;  // opening quote
    for (;;) {
      // The common case: a run of plain ASCII.
      while (p_ != end_ && *p_ >= 0x20 && *p_ < 0x80 && *p_ != '"' && *p_ != '\\') ++p_;
      if (p_ == end_) return false;
      unsigned char c = *p_;
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20) return false;
      if (c >= 0x80) {
        if (!utf8()) return false;
        continue;
      }
      // An escape.
      ++p_;
      if (p_ == end_) return false;
      switch (*p_++) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't': break;
        case 'u': {
          int u = hex4();
          if (u < 0) return false;
          if (u >= 0xDC00 && u <= 0xDFFF) return false;  // a low surrogate alone
          if (u >= 0xD800 && u <= 0xDBFF) {
            // A high surrogate must be followed by an escaped low one.
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
            p_ += 2;
            int low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) return false;
          }
          break;
        }
        default: return false;
      }
    }
  }

  const unsigned char* p_;
  const unsigned char* end_;
  uint32_t max_depth_;
};

}  // namespace

bool is_json_object(std::string_view text, uint32_t max_depth) {
  return Validator(text, max_depth).object_document();
}

}  // namespace ferry::json
