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
  // `event_error` / `typed_error` value that means "before the very first
  // SSE event"; user-supplied negatives are normalised to -1 (off), so this
  // can only come from the word `start`.
  static constexpr int at_stream_start = -2;

  std::optional<int> status;
  std::optional<int> retry_after;
  std::optional<int> delay_ms;
  std::optional<int> chunk_delay_ms;
  std::optional<int> reset_after;  // negative means disabled
  std::optional<bool> malformed;
  std::optional<bool> stream_error;
  std::optional<bool> hang;
  // Hostile-upstream modes for the gateway's hardening tests (README.md).
  std::optional<bool> extra_response;
  std::optional<int> extra_response_delay_ms;  // >= 0 also enables extra_response
  std::optional<bool> echo_auth;
  std::optional<bool> gzip;
  std::optional<bool> invalid_utf8;
  std::optional<int> drip_ms;      // <= 0 means disabled
  std::optional<int> event_error;  // content events before it, or at_stream_start; -1 = off
  std::optional<int> typed_error;  // same positions as event_error
  std::optional<bool> usage_overflow;
  std::optional<bool> nul_suffix;
  std::optional<bool> no_usage;
  std::optional<bool> honor_max_tokens;
  std::optional<bool> byte_tokens;
  std::optional<int> big_chunks;  // words per streamed piece; <= 1 means one word

  void override_with(const Faults& over);

  // Status faults outside 400..599 are ignored: a "fault" that succeeds
  // would only make tests harder to read.
  bool has_error_status() const { return status && *status >= 400 && *status <= 599; }
  bool has_reset() const { return reset_after && *reset_after >= 0; }
  bool is_malformed() const { return malformed.value_or(false); }
  bool is_stream_error() const { return stream_error.value_or(false); }
  bool is_hang() const { return hang.value_or(false); }
  // An explicit extra_response wins, so `extra_response=false` can switch off
  // an instance-wide extra_response_delay_ms for one request.
  bool wants_extra_response() const {
    if (extra_response) return *extra_response;
    return extra_response_delay_ms && *extra_response_delay_ms >= 0;
  }
  int extra_response_delay() const { return extra_response_delay_ms.value_or(0); }
  bool is_echo_auth() const { return echo_auth.value_or(false); }
  bool is_gzip() const { return gzip.value_or(false); }
  bool is_invalid_utf8() const { return invalid_utf8.value_or(false); }
  int drip() const { return drip_ms.value_or(0); }
  bool has_event_error() const {
    return event_error && (*event_error >= 0 || *event_error == at_stream_start);
  }
  bool has_typed_error() const {
    return typed_error && (*typed_error >= 0 || *typed_error == at_stream_start);
  }
  bool is_usage_overflow() const { return usage_overflow.value_or(false); }
  bool is_nul_suffix() const { return nul_suffix.value_or(false); }
  bool is_no_usage() const { return no_usage.value_or(false); }
  bool is_honor_max_tokens() const { return honor_max_tokens.value_or(false); }
  bool is_byte_tokens() const { return byte_tokens.value_or(false); }
  int big_chunk_words() const { return big_chunks.value_or(1); }
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
  std::int64_t prompt_bytes = 0;  // the same text's bytes: prompt_tokens under byte_tokens
  // Honoured for Anthropic; for OpenAI (max_completion_tokens, else
  // max_tokens) only with the honor_max_tokens fault.
  std::optional<std::int64_t> max_tokens;
  Faults faults;  // from the directives
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

// `faults` are the effective (instance + directive) faults; only the ones
// that shape the reply text are looked at.
Reply make_reply(const ChatRequest& req, const Options& opts, const Faults& faults = {});

// Bytes the invalid_utf8 fault plants in replies and error messages: two bytes
// that never occur in UTF-8 and a lone continuation byte.
inline constexpr std::string_view invalid_utf8_bytes = "\xff\xfe\x80";

std::string render_response(const ChatRequest& req, const Reply& reply, std::uint64_t id,
                            std::int64_t created, const Faults& faults = {});
// `raw_bytes` writes the message's bytes verbatim (invalid UTF-8 included)
// instead of replacing invalid sequences with U+FFFD.
std::string render_error(ApiFormat format, int status, std::string_view message, bool raw_bytes = false);

// Ollama's chat API: a whole answer, or (req.stream) one NDJSON line per
// piece and, `with_done`, the final line with "done": true and the counts.
std::string render_ndjson_chat(const ChatRequest& req, const Reply& reply, bool with_done);
std::string render_ndjson_error(std::string_view message);
// Body of the unsolicited response the extra_response fault sends: shaped like
// a real completion of `format`, with content "POISONED" and "poisoned":true.
std::string render_poisoned_response(ApiFormat format, std::string_view model);
// The message of an echo_auth error: the credentials echoed verbatim, the way
// some providers do.
std::string echo_auth_message(ApiFormat format, std::string_view authorization, std::string_view api_key);

std::uint32_t crc32(std::string_view data);
// A valid gzip member (RFC 1952) holding `data` in stored (uncompressed)
// deflate blocks: all a misbehaving upstream needs, and no zlib dependency.
std::string gzip_stored(std::string_view data);
std::string render_models();
// POST /v1/embeddings: deterministic unit vectors (words hashed into
// `dimensions` buckets, default 64). nullopt with `error` set for a bad body.
std::optional<std::string> render_embeddings(std::string_view body, std::string& error);

// Produces the SSE events of one streamed reply lazily, so thousands of
// concurrent long streams do not each hold their whole transcript.
class SseStream {
 public:
  enum class Kind { prelude, content, epilogue };

  SseStream(const ChatRequest& req, Reply reply, std::uint64_t id, std::int64_t created,
            const Faults& faults = {});

  // Appends the next event's wire bytes to `out`; nullopt once finished.
  std::optional<Kind> next(std::string& out);

  std::string_view malformed_event() const;
  std::string_view error_event() const;
  // The event_error fault's event: an `event: error` SSE event that does not
  // end the stream.
  std::string_view named_error_event() const;
  // The typed_error fault's event: Anthropic-style error data with no event
  // name (identical for both formats).
  static std::string_view typed_error_event();

 private:
  void prelude(std::size_t i, std::string& out) const;
  void content(std::size_t i, std::string& out) const;
  void epilogue(std::size_t i, std::string& out) const;
  std::size_t prelude_count() const;
  std::size_t epilogue_count() const;

  ApiFormat format_;
  bool include_usage_;  // OpenAI: send the usage chunk
  bool no_usage_;
  bool usage_overflow_;
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
