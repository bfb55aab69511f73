#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace ferry::sse {

struct Event {
  std::string event;
  std::string data;
  std::string id;
};

// Incremental Server-Sent Events parser (WHATWG "event stream interpretation").
// Bytes may be split anywhere, including between "\r" and "\n"; events come out
// exactly as if the stream had arrived in one piece.
class Parser {
 public:
  explicit Parser(size_t max_event_bytes = 8 * 1024 * 1024) : max_event_bytes_(max_event_bytes) {}

  // Calls on_event(Event&) for every event completed by `bytes`; the callee
  // may move the fields out.
  // Returns false if an event grew beyond max_event_bytes (the stream is then
  // unusable: garbage or hostile upstream).
  template <class OnEvent>
  bool feed(std::string_view bytes, OnEvent&& on_event) {
    size_t i = 0;
    while (i < bytes.size()) {
      if (after_cr_) {
        // The "\n" of a "\r\n" that was split across two feeds.
        after_cr_ = false;
        if (bytes[i] == '\n') {
          ++i;
          continue;
        }
      }
      // A plain loop: find_first_of with a two-character set costs a memchr
      // call per byte.
      size_t eol = i;
      while (eol < bytes.size() && bytes[eol] != '\n' && bytes[eol] != '\r') ++eol;
      if (eol == bytes.size()) {
        line_.append(bytes.substr(i));
        break;
      }
      line_.append(bytes.substr(i, eol - i));
      after_cr_ = bytes[eol] == '\r';
      i = eol + 1;
      if (line_.empty()) {
        if (has_data_) on_event(event_);
        reset_event();
      } else {
        process_line();
        line_.clear();
      }
      if (pending_bytes_ > max_event_bytes_) return false;
    }
    return line_.size() + pending_bytes_ <= max_event_bytes_;
  }

 private:
  void process_line();
  void reset_event();

  size_t max_event_bytes_;
  std::string line_;
  bool after_cr_ = false;
  Event event_;
  bool has_data_ = false;
  size_t pending_bytes_ = 0;
};

}  // namespace ferry::sse
