#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/sse/sse_parser.h"

namespace ferry::sse {
namespace {

struct Seen {
  std::string event, data, id;
  bool operator==(const Seen&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Seen& s) {
  return os << "{event=" << s.event << " data=" << s.data << " id=" << s.id << "}";
}

std::vector<Seen> parse(const std::vector<std::string_view>& pieces) {
  Parser p;
  std::vector<Seen> out;
  for (auto piece : pieces)
    EXPECT_TRUE(p.feed(piece, [&](const Event& e) { out.push_back({e.event, e.data, e.id}); }));
  return out;
}

// Every line ending the spec allows, comments, multi-line data, named events,
// ids, a field without a colon and an empty data line.
const std::string kStream =
    ": keep-alive comment\r\n"
    "data: {\"a\":1}\r\n"
    "\r\n"
    "event: message_start\n"
    "data: {\"type\":\"message_start\"}\n"
    "\n"
    "data: line one\r"
    "data:line two\r"
    "\r"
    "id: 42\n"
    "data\n"
    "\n"
    "retry: 1000\n"
    "event: ping\n"
    "data: {}\n"
    "\n"
    "data: [DONE]\n"
    "\n";

const std::vector<Seen> kExpected = {
    {"", "{\"a\":1}", ""},          {"message_start", "{\"type\":\"message_start\"}", ""},
    {"", "line one\nline two", ""}, {"", "", "42"},
    {"ping", "{}", "42"},           {"", "[DONE]", "42"},
};

TEST(SseParser, ParsesAWholeStream) { EXPECT_EQ(parse({kStream}), kExpected); }

TEST(SseParser, GivesTheSameEventsWhenSplitAtEveryByteBoundary) {
  std::string_view s = kStream;
  for (size_t i = 0; i <= s.size(); ++i) {
    EXPECT_EQ(parse({s.substr(0, i), s.substr(i)}), kExpected) << "split at " << i;
  }
}

TEST(SseParser, GivesTheSameEventsWhenSplitAtEveryPairOfBoundaries) {
  std::string_view s = kStream;
  for (size_t i = 0; i <= s.size(); i += 3)
    for (size_t j = i; j <= s.size(); ++j)
      ASSERT_EQ(parse({s.substr(0, i), s.substr(i, j - i), s.substr(j)}), kExpected)
          << "split at " << i << "," << j;
}

TEST(SseParser, GivesTheSameEventsFedOneByteAtATime) {
  std::vector<std::string_view> bytes;
  std::string_view s = kStream;
  for (size_t i = 0; i < s.size(); ++i) bytes.push_back(s.substr(i, 1));
  EXPECT_EQ(parse(bytes), kExpected);
}

TEST(SseParser, DoesNotDispatchAnUnterminatedEvent) {
  EXPECT_TRUE(parse({"data: partial"}).empty());
  EXPECT_TRUE(parse({"data: partial\n"}).empty());
}

TEST(SseParser, RefusesAnEventLargerThanTheLimit) {
  Parser p(64);
  std::string big = "data: " + std::string(100, 'x');
  EXPECT_FALSE(p.feed(big, [](const Event&) {}));
  Parser q(64);
  std::string lines;
  for (int i = 0; i < 10; ++i) lines += "data: 0123456789\n";
  EXPECT_FALSE(q.feed(lines, [](const Event&) {}));
}

}  // namespace
}  // namespace ferry::sse
