// sse::Parser promises that bytes may be split anywhere (including between
// "\r" and "\n") and the events come out as if the stream had arrived in one
// piece. The input is the stream; the split points come from a generator
// seeded with the input, so every seed is plain SSE text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/sse/sse_parser.h"
#include "fuzz_check.h"

namespace {

using ferry::fuzz::check;
using ferry::fuzz::fail;
using ferry::sse::Event;

struct Run {
  std::vector<Event> events;
  bool ok = true;  // false once feed() refused an oversized event
};

bool same(const Event& a, const Event& b) { return a.event == b.event && a.data == b.data && a.id == b.id; }

std::string describe(const Run& a, const Run& b) {
  std::string out = "events " + std::to_string(a.events.size()) + " vs " + std::to_string(b.events.size()) +
                    ", ok " + std::to_string(a.ok) + " vs " + std::to_string(b.ok);
  for (size_t i = 0; i < a.events.size() && i < b.events.size(); ++i)
    if (!same(a.events[i], b.events[i])) {
      out += "; first difference at event " + std::to_string(i) + ": data '" + a.events[i].data + "' vs '" +
             b.events[i].data + "', event '" + a.events[i].event + "' vs '" + b.events[i].event + "', id '" +
             a.events[i].id + "' vs '" + b.events[i].id + "'";
      break;
    }
  return out;
}

// Feeds `pieces` in order, then "\n\n" to end a last event that has no blank
// line (as the adapter harness does); stops at the first refusal, as the
// engine does.
Run feed(const std::vector<std::string_view>& pieces, size_t max_event_bytes) {
  Run run;
  ferry::sse::Parser parser(max_event_bytes);
  auto on_event = [&](Event& e) { run.events.push_back(std::move(e)); };
  for (std::string_view piece : pieces) {
    if (!parser.feed(piece, on_event)) {
      run.ok = false;
      return run;
    }
  }
  run.ok = parser.feed("\n\n", on_event);
  return run;
}

std::vector<std::string_view> random_split(std::string_view text, ferry::fuzz::Rng& rng) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    // Mostly short pieces, sometimes long ones, sometimes empty ones.
    size_t n = rng.below(4) == 0 ? rng.below(text.size() + 1) : rng.below(9);
    out.push_back(text.substr(0, n));
    text.remove_prefix(std::min(n, text.size()));
  }
  return out;
}

std::vector<std::string_view> bytewise(std::string_view text) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < text.size(); ++i) out.push_back(text.substr(i, 1));
  return out;
}

// Splits exactly between a "\r" and what follows it, where the parser has to
// remember the "\r" across feeds.
std::vector<std::string_view> after_each_cr(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\r') {
      out.push_back(text.substr(start, i + 1 - start));
      start = i + 1;
    }
  out.push_back(text.substr(start));
  return out;
}

void check_split_invariance(std::string_view text, size_t max_event_bytes) {
  Run whole = feed({text}, max_event_bytes);
  bool unbounded = max_event_bytes >= text.size() + 2;
  // Below the bound, nothing is ever refused.
  if (unbounded) check(whole.ok, "feed() refused a stream smaller than max_event_bytes");

  ferry::fuzz::Rng rng(text);
  std::vector<std::vector<std::string_view>> splits = {bytewise(text), after_each_cr(text),
                                                       random_split(text, rng), random_split(text, rng)};
  for (const auto& pieces : splits) {
    Run split = feed(pieces, max_event_bytes);
    // (The messages are built only on failure: this runs thousands of times a second.)
    auto broken = [&](const char* what) {
      fail(what, describe(whole, split) + "; input: " + std::string(text));
    };
    if (unbounded || (whole.ok && split.ok)) {
      if (split.ok != whole.ok || split.events.size() != whole.events.size())
        broken("split feeding gives different events");
    } else {
      // Near the bound a split stream may be refused earlier than a whole one
      // (a long line is checked while it is still incomplete), never later,
      // and what came out before must be the same events.
      if (!whole.ok && split.ok) broken("a split stream was accepted where the whole one was refused");
      if (split.events.size() > whole.events.size()) broken("a refused split stream gave extra events");
    }
    size_t n = std::min(split.events.size(), whole.events.size());
    for (size_t i = 0; i < n; ++i)
      if (!same(split.events[i], whole.events[i])) broken("split feeding gives different events");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = ferry::fuzz::bytes(data, size);
  check_split_invariance(text, 8 * 1024 * 1024);  // what ferryd uses
  check_split_invariance(text, 16);               // a bound the fuzzer's inputs reach
  return 0;
}
