#include "core/sse/sse_parser.h"

namespace ferry::sse {

void Parser::process_line() {
  if (line_.front() == ':') return;  // comment, e.g. keep-alive pings
  std::string_view line = line_;
  auto colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) event_.data.push_back('\n');
    event_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_.event.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) event_.id.assign(value);
  }
  // "retry" and unknown fields are ignored, as the spec says.
  pending_bytes_ = event_.data.size() + event_.event.size() + event_.id.size();
}

void Parser::reset_event() {
  event_.data.clear();
  event_.event.clear();
  has_data_ = false;
  pending_bytes_ = event_.id.size();
}

}  // namespace ferry::sse
