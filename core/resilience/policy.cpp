#include "core/resilience/policy.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <string>

namespace ferry::resilience {

namespace {
constexpr std::array<const char*, kErrorClasses> kClassNames{
    "connect",      "timeout",        "rate_limited",   "server_error",
    "client_error", "context_length", "content_filter", "auth"};

bool contains(std::string_view haystack, std::string_view needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         }) != haystack.end();
}
}  // namespace

const char* name(ErrorClass c) { return kClassNames[static_cast<size_t>(c)]; }

const char* name(Action a) {
  switch (a) {
    case Action::kRetry: return "retry";
    case Action::kFailover: return "failover";
    case Action::kReturn: return "return";
  }
  return "?";
}

std::optional<ErrorClass> error_class_from_name(std::string_view n) {
  for (size_t i = 0; i < kClassNames.size(); ++i)
    if (n == kClassNames[i]) return static_cast<ErrorClass>(i);
  return std::nullopt;
}

std::optional<Action> action_from_name(std::string_view n) {
  if (n == "retry") return Action::kRetry;
  if (n == "failover") return Action::kFailover;
  if (n == "return") return Action::kReturn;
  return std::nullopt;
}

ErrorClass classify(int status, std::string_view type, std::string_view message) {
  if (status == 429) return ErrorClass::kRateLimited;
  if (status == 408 || status == 504) return ErrorClass::kTimeout;
  if (status >= 500) return ErrorClass::kServerError;
  if (status == 401 || status == 403) return ErrorClass::kAuth;
  // Providers word these differently: OpenAI's code context_length_exceeded,
  // "maximum context length", Anthropic's "prompt is too long".
  if (type == "context_length_exceeded" || contains(message, "context_length_exceeded") ||
      contains(message, "maximum context length") || contains(message, "context window") ||
      contains(message, "prompt is too long") || contains(message, "too many tokens"))
    return ErrorClass::kContextLength;
  if (type == "content_filter" || contains(message, "content_filter") ||
      contains(message, "content management policy") || contains(message, "content policy"))
    return ErrorClass::kContentFilter;
  return ErrorClass::kClientError;
}

std::chrono::milliseconds Policy::backoff(uint32_t retry, double unit) const {
  int64_t cap = backoff_base.count();
  for (uint32_t i = 0; i < retry && cap < backoff_max.count(); ++i) cap *= 2;
  cap = std::min<int64_t>(cap, backoff_max.count());
  return std::chrono::milliseconds(static_cast<int64_t>(unit * static_cast<double>(cap)));
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  double seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && end == value.data() + value.size()) {
    if (seconds < 0) return std::nullopt;
    return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  }
  // An HTTP date: "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  std::string text(value);
  if (!strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return std::nullopt;
  auto when = timegm(&tm);
  auto now = std::time(nullptr);
  return std::chrono::milliseconds(std::max<int64_t>(0, static_cast<int64_t>(when - now) * 1000));
}

}  // namespace ferry::resilience
