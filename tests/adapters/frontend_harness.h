// Drives a real frontend plugin (.so) through the real host service table,
// the way ferryd does, with no socket: decode a client's request into the
// canonical one, encode canonical answers, chunks and errors into the
// client's dialect.
//
//   auto fe = ferry::adapter_test::Frontend::load("anthropic");
//   auto d = fe->decode("POST", "/v1/messages", body);      // d.canonical
//   auto e = fe->encode_stream({chunk1, chunk2}, true);       // e.events
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "core/pipeline/runtime.h"
#include "core/plugin/host_api.h"
#include "tests/adapters/adapter_harness.h"

namespace ferry::adapter_test {

struct SseOut {
  std::string event;
  std::string data;
};

class Frontend {
 public:
  // ferry_frontend_<plugin>.so from FERRY_TEST_PLUGIN_DIR; null (and a test
  // failure) if it does not load or create.
  static std::unique_ptr<Frontend> load(std::string_view plugin);

  struct Decoded {
    ferry_status status = FERRY_OK;
    Json canonical;        // the request after decode
    int error_status = 0;  // output_error
    std::string error_type;
    std::string error_message;
    plugin::FrontendOutput output;  // what a FERRY_RESPOND wrote
  };
  // The route is found by method, path and headers, as the host finds it.
  Decoded decode(std::string_view method, std::string_view path, std::string_view body,
                 const util::Headers& headers = {});

  struct Encoded {
    ferry_status status = FERRY_OK;
    std::vector<SseOut> events;    // of a stream
    plugin::FrontendOutput whole;  // of a whole answer or an error before the stream
  };
  // Each canonical chunk in turn, then (with `end`) the end of the stream.
  Encoded encode_stream(const std::vector<std::string>& chunks, bool end, std::string_view model = "m");
  Encoded encode_response(std::string_view canonical, std::string_view operation = "chat.completions");
  Encoded encode_error(int status, std::string_view type, std::string_view message, bool in_stream);

 private:
  std::unique_ptr<pipeline::RequestContext> context(std::string_view model, bool stream);
  static std::vector<SseOut> parse_events(std::string_view bytes);

  boost::asio::io_context io_;
  std::unique_ptr<pipeline::Instance<ferry_frontend_vtable>> instance_;
  std::vector<ferry_route> routes_;
};

}  // namespace ferry::adapter_test
