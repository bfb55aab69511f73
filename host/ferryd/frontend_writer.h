#pragma once

#include <string>
#include <string_view>

#include "core/json/doc.h"
#include "core/pipeline/engine.h"
#include "core/pipeline/request_context.h"
#include "core/pipeline/runtime.h"
#include "core/plugin/host_api.h"
#include "host/ferryd/http_writer.h"

namespace ferry::host {

// The engine's canonical answers (OpenAI JSON, chunks, errors) encoded by a
// frontend plugin into its client's dialect, then written by an HttpWriter.
// One per request, on its worker thread.
class FrontendWriter final : public pipeline::ClientWriter {
 public:
  FrontendWriter(const pipeline::Frontend& frontend, pipeline::RequestContext& ctx, HttpWriter& http)
      : frontend_(frontend), ctx_(ctx), http_(http) {}
  ~FrontendWriter() override;
  FrontendWriter(const FrontendWriter&) = delete;
  FrontendWriter& operator=(const FrontendWriter&) = delete;

  boost::asio::awaitable<bool> send_json(int status, std::string_view body,
                                         const util::Headers& headers) override;
  void begin_events(const util::Headers& headers) override;
  void queue_event(std::string_view data) override;
  void end_events() override;
  boost::asio::awaitable<bool> flush() override;
  bool accepts_native() const override { return frontend_.plugin->vt().encode_native != nullptr; }
  void queue_native(std::string_view event, std::string_view data) override;
  boost::asio::awaitable<bool> send_native(std::string_view body, const util::Headers& headers) override;

  // An error the gateway raises: the engine's, and the host's own (a decode
  // refusal, an unknown model).
  boost::asio::awaitable<bool> send_error(int status, std::string_view type, std::string_view code,
                                          std::string_view message,
                                          const util::Headers& headers = {}) override;
  void queue_error(std::string_view type, std::string_view code, std::string_view message) override;
  // What decode answered by itself (FERRY_RESPOND).
  boost::asio::awaitable<bool> send_output(plugin::FrontendOutput& out);

 private:
  ferry_encoder* encoder();
  ferry_status encode_error(int status, std::string_view type, std::string_view code,
                            std::string_view message, std::string_view retry_after, bool in_stream,
                            plugin::FrontendOutput& out);
  // Moves what an encode hook wrote for a stream onto the wire's queue.
  void queue_output(plugin::FrontendOutput& out);
  void start_stream(const util::Headers& extra);

  const pipeline::Frontend& frontend_;
  pipeline::RequestContext& ctx_;
  HttpWriter& http_;
  bool encoder_open_ = false;
  ferry_encoder* encoder_ = nullptr;
  util::Headers stream_headers_;  // from begin_events, until the head goes out
  bool stream_wanted_ = false;    // the engine began a stream
  bool stream_started_ = false;   // its head is queued
  bool stream_failed_ = false;    // an error event ended it: only its end is encoded
  // Reused for every stream event: no allocation per chunk.
  plugin::FrontendOutput event_out_;
  json::Doc chunk_;
};

}  // namespace ferry::host
