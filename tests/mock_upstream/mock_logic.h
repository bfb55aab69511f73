// Protocol-independent half of ferry-mock-upstream: request parsing, reply
// generation, fault directives and shared statistics. Kept free of Beast so
// that only main.cpp pays Beast's compile-time cost.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::mock {

enum class ApiFormat { openai, anthropic };

// Every field is optional so a per-request directive can override an
// instance-wide fault field by field instead of wholesale.
struct Faults {
  std::optional<int> status;
  std::optional<int> retry_after;
  std::optional<int> delay_ms;
  std::optional<int> chunk_delay_ms;
  std::optional<int> reset_after;  // negative means disabled
  std::optional<bool> malformed;
  std::optional<bool> stream_error;
  std::optional<bool> hang;

  void override_with(const Faults& over);

  // Status faults outside 400..599 are ignored: a "fault" that succeeds
  // would only make tests harder to read.
  bool has_error_status() const { return status && *status >= 400 && *status <= 599; }
  bool has_reset() const { return reset_after && *reset_after >= 0; }
  bool is_malformed() const { return malformed.value_or(false); }
  bool is_stream_error() const { return stream_error.value_or(false); }
  bool is_hang() const { return hang.value_or(false); }
};

// Removes every `[[fault:...]]` directive from `text`, trims the result, and
// returns the faults the directives asked for.
Faults extract_fault_directives(std::string& text);

struct InstanceFaults {
  Faults faults;
  std::int64_t count = -1;  // model requests left; negative = until cleared
};

// Parses the body of POST /_mock/faults; returns an error message on bad input.
std::optional<std::string> parse_instance_faults(std::string_view body, InstanceFaults& out);

struct Options {
  int words = 0;           // >0: reply with "w1 .. wN" instead of echoing
  int chunk_delay_ms = 0;  // default pacing between streamed pieces
};

struct ChatRequest {
  ApiFormat format = ApiFormat::openai;
  std::string model;
  bool stream = false;
  bool include_usage = false;
  std::string user_text;                 // directives already stripped
  std::optional<std::string> tool_name;  // set when the reply is a tool call
  std::int64_t prompt_tokens = 0;
  std::optional<std::int64_t> max_tokens;  // honoured for Anthropic only
  Faults faults;                           // from the directives
};

// Returns a message suitable for a 400 when the body is unusable.
std::optional<std::string> parse_chat_request(std::string_view body, ApiFormat format, ChatRequest& out);

struct Reply {
  bool tool_call = false;
  std::string text;  // assistant text, or the tool arguments as JSON
  // Offsets one past each streamed piece; offsets rather than views so a
  // moved Reply (short-string optimisation) cannot leave them dangling.
  std::vector<std::size_t> piece_ends;
  std::string stop_reason;
  std::int64_t completion_tokens = 0;

  std::size_t piece_count() const { return piece_ends.size(); }
  std::string_view piece(std::size_t i) const;
};

Reply make_reply(const ChatRequest& req, const Options& opts);

std::string render_response(const ChatRequest& req, const Reply& reply, std::uint64_t id,
                            std::int64_t created);
std::string render_error(ApiFormat format, int status, std::string_view message);
std::string render_models();
// POST /v1/embeddings: deterministic unit vectors (words hashed into
// `dimensions` buckets, default 64). nullopt with `error` set for a bad body.
std::optional<std::string> render_embeddings(std::string_view body, std::string& error);

// Produces the SSE events of one streamed reply lazily, so thousands of
// concurrent long streams do not each hold their whole transcript.
class SseStream {
 public:
  enum class Kind { meta, content };

  SseStream(const ChatRequest& req, Reply reply, std::uint64_t id, std::int64_t created);

  // Appends the next event's wire bytes to `out`; nullopt once finished.
  std::optional<Kind> next(std::string& out);

  std::string_view malformed_event() const;
  std::string_view error_event() const;

 private:
  void prelude(std::size_t i, std::string& out) const;
  void content(std::size_t i, std::string& out) const;
  void epilogue(std::size_t i, std::string& out) const;
  std::size_t prelude_count() const;
  std::size_t epilogue_count() const;

  ApiFormat format_;
  bool include_usage_;
  std::int64_t prompt_tokens_;
  Reply reply_;
  std::string id_;
  std::string model_json_;  // already JSON-escaped and quoted
  std::string tool_name_json_;
  std::int64_t created_;
  std::size_t step_ = 0;
};

struct RecordedRequest {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// State shared by every io_context thread. One short critical section per
// request keeps it off the benchmark's critical path.
class SharedState {
 public:
  // Records a request for /_mock/stats; when `fault_eligible`, also takes
  // one use of the instance faults and returns them.
  Faults on_request(RecordedRequest rec, bool fault_eligible);

  void set_faults(InstanceFaults faults);
  void clear_faults();
  void reset();
  std::string render_stats() const;

 private:
  mutable std::mutex mu_;
  std::uint64_t requests_ = 0;
  std::map<std::string, std::uint64_t, std::less<>> by_path_;
  std::shared_ptr<const RecordedRequest> last_;
  std::optional<InstanceFaults> faults_;
};

}  // namespace ferry::mock
