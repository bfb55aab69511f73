// Canonical answers (OpenAI chat completions, chunks, model lists, errors)
// written as the Anthropic Messages API writes them.
#pragma once

#include <map>
#include <string>

#include <ferry/plugin.hpp>

namespace ferry_anthropic {

// A chat.completion as an Anthropic message.
std::string message_from(const ferry::sdk::Json& completion, std::string_view fallback_model);
// An OpenAI model list as Anthropic's.
std::string models_from(const ferry::sdk::Json& list);
// {"type":"error","error":{"type":...,"message":...}} and the Anthropic error
// type for a status.
std::string_view error_type(int status);
std::string error_body(int status, std::string_view message, std::string_view request_id);
// Anthropic's stop_reason for an OpenAI finish_reason.
std::string_view stop_reason(std::string_view finish_reason);

// Turns one answer's chunks into Anthropic's event sequence: message_start,
// then per content block content_block_start / _delta / _stop, then
// message_delta (stop reason, usage) and message_stop.
class StreamEncoder final : public ferry::sdk::Encoder {
 public:
  ferry::sdk::Status response(ferry::sdk::Context& ctx, const ferry::sdk::Json& response,
                              ferry::sdk::Output& out) override;
  ferry::sdk::Status chunk(ferry::sdk::Context& ctx, const ferry::sdk::Json& chunk,
                           ferry::sdk::Output& out) override;
  ferry::sdk::Status end(ferry::sdk::Context& ctx, ferry::sdk::Output& out) override;
  ferry::sdk::Status error(ferry::sdk::Context& ctx, const ferry::sdk::ErrorInfo& error,
                           ferry::sdk::Output& out) override;
  // An Anthropic upstream's own events (or whole message) for this Anthropic
  // client: passed on as they came. The canonical chunks that follow each
  // event then only keep the stop reason and usage, for an end the host
  // imposes (a max_tokens cut, a broken stream).
  ferry::sdk::Status native(ferry::sdk::Context& ctx, std::string_view event, std::string_view data,
                            ferry::sdk::Output& out) override;

 private:
  enum class Block { kNone, kText, kThinking, kToolUse };
  void start(std::string_view id, std::string_view model, ferry::sdk::Output& out);
  void open(Block kind, std::string_view block_json, ferry::sdk::Output& out);
  void close(ferry::sdk::Output& out);
  void delta(int64_t index, std::string_view delta_json, ferry::sdk::Output& out);

  bool started_ = false;
  bool native_ = false;    // the upstream's own events are passed on
  bool finished_ = false;  // ... and its message_stop was one of them
  bool failed_ = false;    // an error event ended the stream: Anthropic streams stop there
  Block open_ = Block::kNone;
  int64_t index_ = -1;                // of the open block
  int64_t next_index_ = 0;            // of the next block to open
  std::map<int64_t, int64_t> tools_;  // OpenAI tool call index -> content block index
  std::string stop_reason_ = "end_turn";
  int64_t input_tokens_ = 0;
  int64_t output_tokens_ = 0;
  int64_t cache_read_tokens_ = 0;
};

}  // namespace ferry_anthropic
