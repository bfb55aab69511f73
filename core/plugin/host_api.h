#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ferry/ferry.h>

#include "core/config/config.h"
#include "core/http/upstream_client.h"
#include "core/json/doc.h"
#include "core/pipeline/async_state.h"
#include "core/pipeline/request_context.h"
#include "core/state/store.h"
#include "core/util/headers.h"

namespace ferry::plugin {

// The one host service table handed to every plugin (ABI.md R5).
const ferry_host_api* host_api();

// Where an admin request's answer goes (ABI 1.2 admin_reply): the admin
// listener implements it. ferry_admin_reply points to an AdminReplyHandle,
// which admin_reply deletes after delivering.
class AdminReplySink {
 public:
  virtual ~AdminReplySink() = default;
  virtual void reply(int status, std::string body) = 0;  // any thread
};
struct AdminReplyHandle {
  std::shared_ptr<AdminReplySink> sink;
};
inline ferry_admin_reply* handle(AdminReplyHandle* h) { return reinterpret_cast<ferry_admin_reply*>(h); }

// The shared-state backend behind state_call (ABI 1.2). Set before plugins
// are created, cleared after they are gone.
void set_state_store(state::Store* store);
state::Store* state_store();

// What ferry_upstream points to while a provider builds a request.
struct UpstreamBuild {
  http::UpstreamRequest request;
  json::Doc* body_doc = nullptr;  // upstream_set_body_json: serialized after build_request
  std::string dialect;            // upstream_set_dialect (1.3): it was given the client's native body
  ferry_framing framing = FERRY_FRAMING_SSE;  // upstream_set_framing (1.3)
  // upstream_refuse (1.3): the client's request cannot go to this provider.
  std::optional<pipeline::SinkEvent> refused;
};

// What a frontend wrote during one hook (ABI 1.3 output_*): a whole answer,
// framed Server-Sent Events, or (decode) the client's error.
struct FrontendOutput {
  util::Headers headers;
  bool has_body = false;
  int status = 0;
  std::string content_type;
  std::string body;
  std::string events;  // "event: ...\ndata: ...\n\n", ready for the wire
  int error_status = 0;
  std::string error_type;
  std::string error_message;
  // Empty again, keeping the buffers' capacity (one output reused per event).
  void reset() {
    headers.clear();
    has_body = false;
    status = error_status = 0;
    content_type.clear();
    body.clear();
    events.clear();
    error_type.clear();
    error_message.clear();
  }
};
inline ferry_output* handle(FrontendOutput* o) { return reinterpret_cast<ferry_output*>(o); }

// Conversions between ABI handles and the host objects behind them. The ABI
// types are incomplete, so these are plain pointer reinterpretations.
inline ferry_json* handle(json::Doc* d) { return reinterpret_cast<ferry_json*>(d); }
inline json::Doc* doc(const ferry_json* j) {
  return reinterpret_cast<json::Doc*>(const_cast<ferry_json*>(j));
}
inline ferry_ctx* handle(pipeline::RequestContext* c) { return reinterpret_cast<ferry_ctx*>(c); }
inline pipeline::RequestContext* ctx(const ferry_ctx* c) {
  return reinterpret_cast<pipeline::RequestContext*>(const_cast<ferry_ctx*>(c));
}
inline ferry_upstream* handle(UpstreamBuild* u) { return reinterpret_cast<ferry_upstream*>(u); }
inline const ferry_headers* handle(const util::Headers* h) {
  return reinterpret_cast<const ferry_headers*>(h);
}
inline ferry_sink* handle(pipeline::Sink* s) { return reinterpret_cast<ferry_sink*>(s); }

// The creation of one instance from `config`: while alive, config_error()
// calls about it become diagnostics placed at the TOML position of the
// reported key, and instance_self(config) answers `instance`. Control thread only.
class ConfigErrorScope {
 public:
  ConfigErrorScope(const ferry_json* config, const config::PluginBlock& block,
                   std::vector<config::Diagnostic>& errors, ferry_plugin_handle* instance = nullptr);
  ~ConfigErrorScope();
  ConfigErrorScope(const ConfigErrorScope&) = delete;
  ConfigErrorScope& operator=(const ConfigErrorScope&) = delete;
  ConfigErrorScope* previous() const { return previous_; }

  const ferry_json* config;
  const config::PluginBlock& block;
  std::vector<config::Diagnostic>& errors;
  ferry_plugin_handle* instance;

 private:
  ConfigErrorScope* previous_;
};

}  // namespace ferry::plugin
