// A provider adapter plugin on hostile upstream answers, through the adapter
// tests' harness (tests/adapters/adapter_harness.h): the real .so, loaded and
// driven through the real host service table. One input is used four ways:
//   1. parse_response(200, input) and parse_response(<a status the input
//      picks>, input): a whole upstream answer;
//   2. stream(): the input framed as Server-Sent Events by the host's parser,
//      as the engine frames an upstream stream;
//   3. stream(): each line of the input as one event's data (so a plain JSON
//      seed is also a stream of JSON events, and "[DONE]" a line);
//   4. build_request(input) when the input is a client request the host
//      accepts (pipeline::check_request), since a client chooses those bytes.
// Nothing may crash or throw out of the harness (the SDK's trampolines catch
// everything a plugin throws; the host must not throw either), and the sink
// must end at most once, with its terminal event last.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "adapter_harness.h"
#include "core/config/config.h"
#include "core/json/parse.h"
#include "core/pipeline/request_checks.h"
#include "fuzz_check.h"

namespace ferry::fuzz {

namespace at = ferry::adapter_test;
using Kind = pipeline::SinkEvent::Kind;

// One instance per process (a target fuzzes one plugin).
inline at::Adapter& adapter_for(const char* plugin) {
  static std::unique_ptr<at::Adapter> adapter = [&] {
    ::setenv("FERRY_FUZZ_API_KEY", "sk-ferry-fuzz", 1);
    auto created = at::create_adapter(plugin, {{"api_key_env", "FERRY_FUZZ_API_KEY"}});
    if (!created.adapter) fail("the adapter did not load (is the plugin built?)", created.messages());
    return std::move(created.adapter);
  }();
  return *adapter;
}

inline void check_result(const at::Result& r, const char* what) {
  size_t terminal = 0;
  for (size_t i = 0; i < r.events.size(); ++i) {
    const auto& e = r.events[i];
    if (e.kind == Kind::kDone || e.kind == Kind::kError) {
      ++terminal;
      check(i + 1 == r.events.size(), "an event after the terminal one", what);
    }
    // What the frontend encodes for the client: the event's JSON text.
    if (e.kind == Kind::kResponse || e.kind == Kind::kChunk) (void)at::text(e);
    if (e.kind == Kind::kError) check(!e.type.empty(), "an error event without a type", what);
  }
  check(terminal <= 1, "more than one terminal event", what);
}

// Each line of `text` as one SSE event's data.
inline std::vector<at::Sse> line_events(std::string_view text) {
  std::vector<at::Sse> out;
  while (!text.empty() && out.size() < 4096) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    if (!line.empty()) out.push_back({"", std::string(line), ""});
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
  }
  return out;
}

inline int fuzz_adapter(const char* plugin, const uint8_t* data, size_t size) {
  static constexpr int kStatuses[] = {200, 201, 204, 301, 400, 401, 403, 404, 408, 413,
                                      422, 429, 500, 502, 503, 504, 529, 100, 599, 999};
  at::Adapter& adapter = adapter_for(plugin);
  std::string_view body = bytes(data, size);
  Rng rng(body);
  try {
    check_result(adapter.parse_response(200, body), "parse_response 200");
    int status = kStatuses[rng.below(std::size(kStatuses))];
    check_result(adapter.parse_response(status, body, {}), "parse_response");
    check_result(adapter.stream(at::parse_sse(body)), "stream of SSE events");
    check_result(adapter.stream(line_events(body)), "stream of lines");

    static const config::LimitsConfig limits{};
    static const json::ParseLimits request_limits = limits.request_json();
    json::Value request;
    if (json::parse(body, request, request_limits) &&
        !pipeline::check_request(request, pipeline::RequestContext::Operation::kChat, limits)) {
      at::Upstream up = adapter.build_request(std::string(body));
      // The canonical request is read-only for a provider.
      if (up.status == FERRY_OK)
        check(up.request_after == at::Json::parse(json::dump(request), nullptr, false),
              "build_request changed the canonical request");
    }
  } catch (const std::exception& e) {
    fail("an exception came out of the plugin or the host", e.what());
  } catch (...) {
    fail("an exception that is not a std::exception came out of the plugin or the host");
  }
  return 0;
}

}  // namespace ferry::fuzz
