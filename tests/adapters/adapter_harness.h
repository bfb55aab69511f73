// A small harness that drives a real provider plugin (.so) through the real
// host service table, the way ferryd does, with no network and no ferryd:
//
//   auto created = ferry::adapter_test::create_adapter("anthropic", {{"api_key_env", "MY_KEY"}});
//   auto up = created.adapter->build_request(R"({"model":"m","messages":[...]})");
//   auto r = created.adapter->parse_response(200, body);
//   r.events  // what the plugin delivered through ferry_sink
//
// Instances are created like core/pipeline/runtime.cpp creates them: the
// options as a json::Doc, vt->create() inside a ConfigErrorScope, so
// config_error() calls land as config::Diagnostic. Each call gets a fresh
// pipeline::RequestContext on the harness's own io_context.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <ferry/ferry.h>

#include "core/config/config.h"
#include "core/pipeline/async_state.h"
#include "core/pipeline/request_context.h"
#include "core/pipeline/runtime.h"
#include "core/util/headers.h"

namespace ferry::adapter_test {

// Unordered on purpose: equality then ignores key order and formatting.
using Json = nlohmann::json;

// ------------------------------------------------------------ golden files

// FERRY_GOLDEN_DIR / relative.
std::filesystem::path golden_path(std::string_view relative);
// The file's bytes; fails the current test (and returns "") if it is missing.
std::string read_golden(std::string_view relative);
// The file parsed as JSON; fails the current test if it is not JSON.
Json golden(std::string_view relative);

// Compares `actual` with the JSON of a golden file, ignoring key order and
// formatting; on a mismatch says how they differ (an RFC 6902 patch) and
// shows both. With FERRY_UPDATE_GOLDEN=1 in the environment it rewrites the
// golden file with `actual` instead (review the diff before committing).
::testing::AssertionResult matches_golden(const Json& actual, std::string_view relative);

// ------------------------------------------------------------ sink events

// A sink event as JSON, the form the expected-output golden files use:
//   {"response": {...}}  {"chunk": {...}}  {"done": true}
//   {"error": {"status": 503, "type": "server_error", "message": "..."}}
// A response or chunk that is not JSON is kept as {"response_text": "..."}.
// The JSON text a response or chunk event carries.
std::string text(const pipeline::SinkEvent& event);
Json event_json(const pipeline::SinkEvent& event);
Json events_json(const std::vector<pipeline::SinkEvent>& events);
// Drops the fields that come from the clock ("created") from every response
// and chunk of an events_json() array, or from one chat.completion(.chunk).
Json without_volatile(Json value);

// ------------------------------------------------------------ results

// The upstream HTTP request a provider built (plugin::UpstreamBuild, with the
// body document serialized as the engine does before sending).
struct Upstream {
  ferry_status status = FERRY_OK;
  std::string method;
  std::string url;
  util::Headers headers;
  std::string body;
  bool streaming = false;
  // The canonical request after build_request returned: it is read-only for
  // the provider, so it must equal what went in.
  Json request_after;

  Json body_json() const;                           // discarded() if the body is not JSON
  std::string header(std::string_view name) const;  // "" when absent
  bool has_header(std::string_view name) const;
  bool sensitive(std::string_view name) const;
  // {"method", "url", "headers": {name: value}, "sensitive_headers": [...],
  //  "streaming", "body"} - the form of the upstream golden files.
  Json to_json() const;
};

// What one parse_response / stream / serve call delivered.
struct Result {
  ferry_status status = FERRY_OK;  // of the call (the first failing parse_event for streams)
  std::vector<pipeline::SinkEvent> events;
  // serve(): the terminal event was in the sink before serve() returned.
  bool synchronous = false;

  Json json() const { return events_json(events); }
  // The events of that kind, in order.
  std::vector<const pipeline::SinkEvent*> of(pipeline::SinkEvent::Kind kind) const;
};

// One Server-Sent Event as the host frames it.
struct Sse {
  std::string event;
  std::string data;
  std::string id;
};
// Frames raw "event: ...\ndata: ...\n\n" text with the host's own SSE parser.
std::vector<Sse> parse_sse(std::string_view text);

// ------------------------------------------------------------ the adapter

class Adapter {
 public:
  Adapter(std::string block_name, std::unique_ptr<pipeline::Instance<ferry_provider_vtable>> instance);
  ~Adapter();
  Adapter(const Adapter&) = delete;
  Adapter& operator=(const Adapter&) = delete;

  const ferry_provider_vtable& vt() const { return instance_->vt(); }
  ferry_instance* instance() const { return instance_->instance(); }

  // vt.build_request with the request as the context's canonical request
  // (ctx.stream and ctx.model set from it, as the engine does).
  Upstream build_request(const std::string& request_json);
  Upstream build_request(const char* request_json) { return build_request(std::string(request_json)); }
  Upstream build_request(const Json& request) { return build_request(request.dump()); }

  // vt.parse_response for a whole upstream answer.
  Result parse_response(int status, std::string_view body, const util::Headers& headers = {});

  // stream_open, parse_event for each event until the sink is terminated or
  // the adapter refuses one (as the engine stops), stream_close.
  Result stream(const std::vector<Sse>& events);
  Result stream(std::string_view sse_text) { return stream(parse_sse(sse_text)); }

  // vt.serve; then runs the io_context until the sink got its terminal event
  // or `timeout` passed (for providers that schedule their answer).
  Result serve(const std::string& request_json, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  Result serve(const char* request_json) { return serve(std::string(request_json)); }
  Result serve(const Json& request, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return serve(request.dump(), timeout);
  }

 private:
  std::unique_ptr<pipeline::RequestContext> new_context(const std::string& request_json);
  void settle();  // runs the handlers the host posted (sink wake-ups)

  std::string block_name_;
  boost::asio::io_context io_;  // declared before instance_: outlives it
  std::unique_ptr<pipeline::Instance<ferry_provider_vtable>> instance_;
  uint64_t requests_ = 0;
};

struct Created {
  std::unique_ptr<Adapter> adapter;  // null when the plugin refused its configuration
  ferry_status status = FERRY_OK;    // of vt.create (or FERRY_ERR_NOT_FOUND if the .so did not load)
  std::vector<config::Diagnostic> errors;
  // Every diagnostic as "file:line:col: message", one per line.
  std::string messages() const;
};

// ferry_provider_<plugin>.so from FERRY_TEST_PLUGIN_DIR with `options` as the
// [providers.<plugin>] table.
Created create_adapter(std::string_view plugin, const Json& options = Json::object());

// The provider [providers.<provider>] of a TOML text, through the host's own
// config loader, so diagnostics carry the file:line:col of the offending key.
// A one-provider pipeline is appended to make the config complete.
Created create_adapter_from_toml(std::string_view toml, std::string_view provider,
                                 const std::string& file = "adapters.toml");

}  // namespace ferry::adapter_test

namespace ferry::pipeline {
// Readable gtest output for EXPECT_EQ(event.kind, Kind::kError).
inline void PrintTo(SinkEvent::Kind kind, std::ostream* os) {
  static constexpr const char* kNames[] = {"kResponse", "kChunk", "kDone", "kError", "kNative"};
  auto i = static_cast<size_t>(kind);
  *os << (i < std::size(kNames) ? kNames[i] : "unknown");
}
}  // namespace ferry::pipeline
