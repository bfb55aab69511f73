#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ferry::sse {

// Cuts a newline-delimited stream (NDJSON: one JSON text per line) into its
// lines, whatever the pieces it arrives in. Empty lines are skipped; "\r\n"
// ends a line like "\n". A line longer than the bound stops the stream, like
// an oversized SSE event.
class LineParser {
 public:
  explicit LineParser(size_t max_line_bytes = 8 * 1024 * 1024) : max_line_bytes_(max_line_bytes) {}

  // Calls on_line(std::string&) for every complete line. Returns false once a
  // line grew beyond the bound.
  template <class OnLine>
  bool feed(std::string_view bytes, OnLine&& on_line) {
    while (!bytes.empty()) {
      size_t nl = bytes.find('\n');
      if (nl == std::string_view::npos) {
        line_.append(bytes);
        return line_.size() <= max_line_bytes_;
      }
      line_.append(bytes.substr(0, nl));
      bytes.remove_prefix(nl + 1);
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();
      if (line_.size() > max_line_bytes_) return false;
      if (!line_.empty()) on_line(line_);
      line_.clear();
    }
    return true;
  }

 private:
  size_t max_line_bytes_;
  std::string line_;
};

}  // namespace ferry::sse
