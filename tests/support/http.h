#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/json/doc.h"

namespace ferry::test {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;  // 0: no HTTP answer (connection refused or reset)
  std::string body;
  std::multimap<std::string, std::string> headers;  // lower-case names
  std::string error;                                // transport error, if status is 0

  std::string header(const std::string& name) const;
  json::Value json() const;
};

HttpResponse http_get(const std::string& address, const std::string& path, const HeaderList& headers = {});
HttpResponse http_post(const std::string& address, const std::string& path, const std::string& body,
                       const HeaderList& headers = {});

// A Server-Sent Events answer, read to the end.
struct SseResponse {
  int status = 0;
  std::multimap<std::string, std::string> headers;
  std::string raw;                  // the body as received
  std::vector<std::string> events;  // each event's data, in order
  std::string error;

  std::string header(const std::string& name) const;
  bool ends_with_done() const { return !events.empty() && events.back() == "[DONE]"; }
  // Every event but [DONE], parsed (fails the test on invalid JSON).
  std::vector<json::Value> chunks() const;
  // The concatenated delta.content of all chunks.
  std::string content() const;
};

// on_data, if given, sees each piece of body as it arrives; returning false
// closes the connection.
SseResponse http_post_sse(const std::string& address, const std::string& path, const std::string& body,
                          const HeaderList& headers = {},
                          const std::function<bool(std::string_view)>& on_data = nullptr);

}  // namespace ferry::test
