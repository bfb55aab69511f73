// The bytes a client sends, the way ferryd reads them (host/ferryd/server.cpp
// session()): Boost.Beast's request_parser with ferryd's limits over a
// flat_buffer that fills as the socket delivers, requests one after another
// on a kept-alive connection, then for a chat or embeddings request the body
// parsed with the [limits] of a default config and pipeline::check_request.
// Nothing may crash; what check_request lets through must be what the engine
// then relies on.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "core/config/config.h"
#include "core/json/doc.h"
#include "core/pipeline/request_checks.h"
#include "fuzz_check.h"

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using ferry::fuzz::check;

const ferry::config::LimitsConfig& limits() {
  static const ferry::config::LimitsConfig l{};
  return l;
}

// The client's bytes as a socket hands them over: in pieces of up to 4096
// (ferryd's first read) whose sizes come from the input.
class Socket {
 public:
  explicit Socket(std::string_view bytes) : bytes_(bytes), rng_(bytes) {}

  // async_read_some into the buffer; false at end of stream.
  bool read_some(beast::flat_buffer& buffer) {
    if (bytes_.empty()) return false;
    size_t n = std::min(bytes_.size(), 1 + rng_.below(4096));
    auto space = buffer.prepare(n);
    std::memcpy(space.data(), bytes_.data(), n);
    buffer.commit(n);
    bytes_.remove_prefix(n);
    return true;
  }

 private:
  std::string_view bytes_;
  ferry::fuzz::Rng rng_;
};

// What http::read_some does (boost/beast/http/impl/read.hpp): parse what is
// buffered, read more while the parser needs more, put_eof at end of stream.
// Returns when the header (header_only) or the whole message is in, or on error.
beast::error_code read(Socket& socket, beast::flat_buffer& buffer,
                       bhttp::request_parser<bhttp::string_body>& parser, bool header_only) {
  auto done = [&] { return header_only ? parser.is_header_done() : parser.is_done(); };
  beast::error_code ec;
  while (!done()) {
    if (buffer.size() > 0) {
      size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (!ec && used > 0) continue;
      if (ec && ec != bhttp::error::need_more) return ec;
      ec = {};
    }
    if (!socket.read_some(buffer)) {
      if (parser.got_some()) {
        parser.put_eof(ec);
        if (!ec && !done()) ec = bhttp::error::partial_message;
      } else {
        ec = bhttp::error::end_of_stream;
      }
      return ec;
    }
  }
  return ec;
}

void check_body(const bhttp::request<bhttp::string_body>& req, std::string_view path) {
  static const ferry::json::ParseLimits request_limits = limits().request_json();
  auto op = path == "/v1/embeddings" ? ferry::pipeline::RequestContext::Operation::kEmbeddings
                                     : ferry::pipeline::RequestContext::Operation::kChat;
  ferry::json::Doc doc = ferry::json::Doc::from_text(std::string(req.body()), &request_limits);
  const ferry::json::Value* value = doc.value();
  if (!value) {
    ferry::pipeline::Refusal r = ferry::pipeline::refuse_unparsable(doc.parse_error());
    check(r.status >= 400 && r.status < 500 && !r.message.empty() && !r.code.empty(),
          "refuse_unparsable gave no proper 4xx", r.message);
    return;
  }
  auto refused = ferry::pipeline::check_request(*value, op, limits());
  if (refused) {
    check(refused->status >= 400 && refused->status < 500 && !refused->message.empty() &&
              !refused->code.empty(),
          "check_request refused without a proper 4xx", refused->message);
    return;
  }
  // What Call::run (core/pipeline/engine.cpp) reads right after the check.
  const ferry::json::Value* model = ferry::pipeline::member(*value, "model");
  check(model && model->is_string() && !model->get_ref<const std::string&>().empty(),
        "check_request accepted a request without a string model", req.body());
  (void)ferry::pipeline::bool_member(*value, "stream");
  (void)ferry::pipeline::int_member(*value, "max_tokens");
  (void)doc.text();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Socket socket(ferry::fuzz::bytes(data, size));
  beast::flat_buffer buffer;
  // A kept-alive connection: requests one after another from the same buffer.
  for (int n = 0; n < 16; ++n) {
    if (buffer.size() == 0 && !socket.read_some(buffer)) break;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(limits().max_header_bytes);
    parser.body_limit(limits().max_body_bytes);
    if (read(socket, buffer, parser, /*header_only=*/true)) break;
    size_t fields = 0;
    for (auto it = parser.get().begin(); it != parser.get().end(); ++it) ++fields;
    if (fields > limits().max_header_count) break;
    (void)parser.get()[bhttp::field::expect];
    if (!parser.is_done() && read(socket, buffer, parser, /*header_only=*/false)) break;
    check(parser.is_done(), "the parser stopped without an error before the message was complete");

    const auto& req = parser.get();
    (void)req["x-request-id"];
    (void)ferry::json::printable(req.method_string(), 20);
    (void)ferry::json::printable(req.target(), 200);
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    check(req.body().size() <= limits().max_body_bytes, "a body over body_limit got through");
    if ((path == "/v1/chat/completions" || path == "/v1/embeddings") && req.method() == bhttp::verb::post)
      check_body(req, path);
    if (!req.keep_alive()) break;
  }
  return 0;
}
