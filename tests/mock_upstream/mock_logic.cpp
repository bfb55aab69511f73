#include "mock_logic.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

namespace ferry::mock {

namespace {

using json = nlohmann::json;
// Insertion order keeps responses shaped like the real APIs, which makes
// test failures and captured traffic easier to eyeball.
using ojson = nlohmann::ordered_json;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::int64_t count_words(std::string_view s) {
  std::int64_t n = 0;
  bool in_word = false;
  for (char c : s) {
    if (is_space(c)) {
      in_word = false;
    } else if (!in_word) {
      in_word = true;
      ++n;
    }
  }
  return n;
}

// Each piece after the first keeps its leading whitespace so the pieces
// concatenate back to exactly the non-streamed text.
std::vector<std::size_t> split_pieces(std::string_view s) {
  std::vector<std::size_t> ends;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    if (i == s.size()) break;
    while (i < s.size() && !is_space(s[i])) ++i;
    ends.push_back(i);
  }
  if (ends.empty()) {
    if (!s.empty()) ends.push_back(s.size());
  } else {
    ends.back() = s.size();  // trailing whitespace rides on the last piece
  }
  return ends;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += hex[(static_cast<unsigned char>(c) >> 4) & 0xf];
          out += hex[static_cast<unsigned char>(c) & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::string json_quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_json_string(out, s);
  return out;
}

std::string dump(const ojson& j) {
  // Replace rather than throw: an echoed byte must never take the server down.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// 1e400 is valid JSON but overflows a double: the usage_overflow fault
// checks that a gateway's accounting does not turn it into inf or garbage.
void append_token_count(std::string& out, std::int64_t n, bool overflow) {
  if (overflow)
    out += "1e400";
  else
    out += std::to_string(n);
}

// `,"usage":{...}` of an OpenAI completion or usage chunk.
void append_openai_usage(std::string& out, std::int64_t p, std::int64_t c, bool overflow) {
  out += ",\"usage\":{\"prompt_tokens\":";
  append_token_count(out, p, overflow);
  out += ",\"completion_tokens\":";
  out += std::to_string(c);
  out += ",\"total_tokens\":";
  append_token_count(out, p + c, overflow);
  out += "}";
}

std::optional<int> parse_int(std::string_view s) {
  s = trim(s);
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

bool parse_flag(std::string_view value, bool has_value) {
  if (!has_value) return true;
  value = trim(value);
  return !(value == "0" || value == "false" || value == "no" || value == "off");
}

// event_error / typed_error positions: a count of content events, the word
// `start`, and any negative number means off. A bare key means 0.
std::optional<int> parse_position(std::string_view value, bool has_value) {
  if (!has_value) return 0;
  if (trim(value) == "start") return Faults::at_stream_start;
  auto v = parse_int(value);
  if (v && *v < 0) v = -1;  // keep at_stream_start unreachable from a number
  return v;
}

// Keys whose value is a flag; shared by the directive and /_mock/faults
// parsers so the two cannot drift apart.
std::optional<bool> Faults::*bool_field(std::string_view key) {
  if (key == "malformed") return &Faults::malformed;
  if (key == "stream_error") return &Faults::stream_error;
  if (key == "hang") return &Faults::hang;
  if (key == "extra_response") return &Faults::extra_response;
  if (key == "echo_auth") return &Faults::echo_auth;
  if (key == "gzip") return &Faults::gzip;
  if (key == "invalid_utf8") return &Faults::invalid_utf8;
  if (key == "usage_overflow") return &Faults::usage_overflow;
  if (key == "nul_suffix") return &Faults::nul_suffix;
  if (key == "no_usage") return &Faults::no_usage;
  if (key == "honor_max_tokens") return &Faults::honor_max_tokens;
  if (key == "byte_tokens") return &Faults::byte_tokens;
  return nullptr;
}

// Keys whose value is a plain integer (reset_after, event_error and
// typed_error have their own bare-key and word forms).
std::optional<int> Faults::*int_field(std::string_view key) {
  if (key == "status") return &Faults::status;
  if (key == "retry_after") return &Faults::retry_after;
  if (key == "delay_ms") return &Faults::delay_ms;
  if (key == "chunk_delay_ms") return &Faults::chunk_delay_ms;
  if (key == "extra_response_delay_ms") return &Faults::extra_response_delay_ms;
  if (key == "drip_ms") return &Faults::drip_ms;
  if (key == "big_chunks") return &Faults::big_chunks;
  return nullptr;
}

std::optional<int> Faults::*position_field(std::string_view key) {
  if (key == "event_error") return &Faults::event_error;
  if (key == "typed_error") return &Faults::typed_error;
  return nullptr;
}

void apply_directive_item(std::string_view item, Faults& f) {
  item = trim(item);
  if (item.empty()) return;
  auto eq = item.find('=');
  bool has_value = eq != std::string_view::npos;
  std::string_view key = trim(item.substr(0, eq));
  std::string_view value = has_value ? item.substr(eq + 1) : std::string_view{};

  if (auto field = bool_field(key)) {
    f.*field = parse_flag(value, has_value);
  } else if (key == "reset_after") {
    // A bare reset_after means "reset before the first event".
    f.reset_after = has_value ? parse_int(value) : std::optional<int>{0};
  } else if (auto pos = position_field(key)) {
    if (auto v = parse_position(value, has_value)) f.*pos = v;
  } else if (auto v = parse_int(value); v && has_value) {
    if (auto num = int_field(key)) f.*num = v;
  }
}

const json* find_member(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string_view string_member(const json& obj, std::string_view key) {
  const json* v = find_member(obj, key);
  return v && v->is_string() ? std::string_view{v->get_ref<const std::string&>()} : std::string_view{};
}

bool bool_member(const json& obj, std::string_view key) {
  const json* v = find_member(obj, key);
  return v && v->is_boolean() && v->get<bool>();
}

bool is_text_part(const json& part) {
  std::string_view type = string_member(part, "type");
  return (type.empty() || type == "text" || type == "input_text") && find_member(part, "text");
}

// Content may be a plain string or an array of parts in both APIs; Anthropic
// tool results nest another content value inside.
void collect_text(const json& content, std::string& out) {
  if (content.is_string()) {
    out += content.get_ref<const std::string&>();
    return;
  }
  if (!content.is_array()) return;
  for (const json& part : content) {
    if (is_text_part(part)) {
      out += string_member(part, "text");
    } else if (string_member(part, "type") == "tool_result") {
      if (const json* inner = find_member(part, "content")) collect_text(*inner, out);
    }
  }
}

// Counted per part so that concatenating adjacent parts cannot merge words.
std::int64_t count_content_words(const json& content) {
  if (content.is_string()) return count_words(content.get_ref<const std::string&>());
  std::int64_t n = 0;
  if (!content.is_array()) return n;
  for (const json& part : content) {
    if (is_text_part(part)) {
      n += count_words(string_member(part, "text"));
    } else if (string_member(part, "type") == "tool_result") {
      if (const json* inner = find_member(part, "content")) n += count_content_words(*inner);
    }
  }
  return n;
}

bool has_tool_result(const json& content) {
  if (!content.is_array()) return false;
  return std::any_of(content.begin(), content.end(),
                     [](const json& part) { return string_member(part, "type") == "tool_result"; });
}

std::optional<std::string> first_tool_name(const json& doc, ApiFormat format) {
  const json* tools = find_member(doc, "tools");
  if (!tools || !tools->is_array() || tools->empty()) return std::nullopt;

  const json* choice = find_member(doc, "tool_choice");
  if (choice) {
    bool none = format == ApiFormat::openai ? (choice->is_string() && *choice == "none")
                                            : string_member(*choice, "type") == "none";
    if (none) return std::nullopt;
  }

  const json& tool = (*tools)[0];
  std::string_view name;
  if (const json* fn = find_member(tool, "function")) name = string_member(*fn, "name");
  if (name.empty()) name = string_member(tool, "name");
  return std::string{name.empty() ? std::string_view{"tool"} : name};
}

std::string openai_error_type(int status) {
  if (status == 429) return "requests";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

ojson openai_error_code(int status) {
  if (status == 429) return "rate_limit_exceeded";
  if (status == 401) return "invalid_api_key";
  return nullptr;
}

std::string anthropic_error_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

}  // namespace

void Faults::override_with(const Faults& over) {
  if (over.status) status = over.status;
  if (over.retry_after) retry_after = over.retry_after;
  if (over.delay_ms) delay_ms = over.delay_ms;
  if (over.chunk_delay_ms) chunk_delay_ms = over.chunk_delay_ms;
  if (over.reset_after) reset_after = over.reset_after;
  if (over.malformed) malformed = over.malformed;
  if (over.stream_error) stream_error = over.stream_error;
  if (over.hang) hang = over.hang;
  if (over.extra_response) extra_response = over.extra_response;
  if (over.extra_response_delay_ms) extra_response_delay_ms = over.extra_response_delay_ms;
  if (over.echo_auth) echo_auth = over.echo_auth;
  if (over.gzip) gzip = over.gzip;
  if (over.invalid_utf8) invalid_utf8 = over.invalid_utf8;
  if (over.drip_ms) drip_ms = over.drip_ms;
  if (over.event_error) event_error = over.event_error;
  if (over.typed_error) typed_error = over.typed_error;
  if (over.usage_overflow) usage_overflow = over.usage_overflow;
  if (over.nul_suffix) nul_suffix = over.nul_suffix;
  if (over.no_usage) no_usage = over.no_usage;
  if (over.honor_max_tokens) honor_max_tokens = over.honor_max_tokens;
  if (over.byte_tokens) byte_tokens = over.byte_tokens;
  if (over.big_chunks) big_chunks = over.big_chunks;
}

Faults extract_fault_directives(std::string& text) {
  static constexpr std::string_view open = "[[fault:";
  Faults faults;
  std::string_view src = text;
  std::size_t pos = src.find(open);
  if (pos == std::string_view::npos) return faults;

  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;
  while (pos != std::string_view::npos) {
    std::size_t close = src.find("]]", pos + open.size());
    if (close == std::string_view::npos) break;  // unterminated: leave it as text
    out.append(src.substr(copied, pos - copied));
    std::string_view body = src.substr(pos + open.size(), close - pos - open.size());
    // Commas let one directive carry several faults, e.g. status=429,retry_after=3.
    for (std::size_t start = 0;;) {
      std::size_t comma = body.find(',', start);
      apply_directive_item(body.substr(start, comma - start), faults);
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    copied = close + 2;
    pos = src.find(open, copied);
  }
  out.append(src.substr(copied));
  text = std::string{trim(out)};
  return faults;
}

std::optional<std::string> parse_instance_faults(std::string_view body, InstanceFaults& out) {
  out = InstanceFaults{};
  if (trim(body).empty()) return std::nullopt;
  json doc = json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return "fault spec must be a JSON object";

  // Not a structured binding: clang before 16 cannot capture one in a lambda.
  for (const auto& item : doc.items()) {
    const auto& key = item.key();
    const auto& value = item.value();
    if (value.is_null()) continue;
    auto as_int = [&](std::optional<int>& dst) -> bool {
      if (!value.is_number_integer()) return false;
      dst = value.get<int>();
      return true;
    };
    auto as_bool = [&](std::optional<bool>& dst) -> bool {
      if (!value.is_boolean()) return false;
      dst = value.get<bool>();
      return true;
    };
    // Same words as the directives: an integer, or "start" for the very
    // first event of the stream.
    auto as_position = [&](std::optional<int>& dst) -> bool {
      if (value.is_string()) {
        if (value.get_ref<const std::string&>() != "start") return false;
        dst = Faults::at_stream_start;
        return true;
      }
      if (!value.is_number_integer()) return false;
      int v = value.get<int>();
      dst = v < 0 ? -1 : v;
      return true;
    };
    bool ok = false;
    if (auto field = bool_field(key))
      ok = as_bool(out.faults.*field);
    else if (auto num = int_field(key))
      ok = as_int(out.faults.*num);
    else if (auto pos = position_field(key))
      ok = as_position(out.faults.*pos);
    else if (key == "reset_after")
      ok = as_int(out.faults.reset_after);
    else if (key == "count") {
      ok = value.is_number_integer();
      if (ok) out.count = value.get<std::int64_t>();
    } else {
      // Rejecting unknown keys turns a typo in a test into a loud 400.
      return "unknown fault field '" + key + "'";
    }
    if (!ok) return "fault field '" + key + "' has the wrong type";
  }
  return std::nullopt;
}

std::optional<std::string> parse_chat_request(std::string_view body, ApiFormat format, ChatRequest& out) {
  out = ChatRequest{};
  out.format = format;

  json doc = json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded()) return "request body is not valid JSON";
  if (!doc.is_object()) return "request body must be a JSON object";

  const json* messages = find_member(doc, "messages");
  if (!messages || !messages->is_array()) return "'messages' must be an array";

  std::string_view model = string_member(doc, "model");
  out.model = model.empty() ? "mock-small" : std::string{model};
  out.stream = bool_member(doc, "stream");
  if (const json* so = find_member(doc, "stream_options"))
    out.include_usage = bool_member(*so, "include_usage");
  out.tool_name = first_tool_name(doc, format);

  if (format == ApiFormat::anthropic) {
    if (const json* system = find_member(doc, "system")) out.prompt_tokens += count_content_words(*system);
    if (const json* mt = find_member(doc, "max_tokens"); mt && mt->is_number_integer()) {
      out.max_tokens = mt->get<std::int64_t>();
    }
  } else {
    // max_completion_tokens is the current name; max_tokens the deprecated one.
    for (const char* key : {"max_tokens", "max_completion_tokens"}) {
      if (const json* mt = find_member(doc, key); mt && mt->is_number_integer()) {
        out.max_tokens = mt->get<std::int64_t>();
      }
    }
  }

  const json* last_user = nullptr;
  for (const json& msg : *messages) {
    if (const json* content = find_member(msg, "content")) {
      out.prompt_tokens += count_content_words(*content);
      std::string text;
      collect_text(*content, text);
      out.prompt_bytes += static_cast<std::int64_t>(text.size());
    }
    if (string_member(msg, "role") == "user") last_user = &msg;
  }

  // When the conversation ends with a tool result, answer in text like a
  // real model would; otherwise agent-loop tests would never terminate.
  const json* source = last_user;
  if (!messages->empty()) {
    const json& last = messages->back();
    const json* content = find_member(last, "content");
    std::string_view role = string_member(last, "role");
    bool tool_turn =
        format == ApiFormat::openai ? role == "tool" : role == "user" && content && has_tool_result(*content);
    if (tool_turn) {
      source = &last;
      out.tool_name.reset();
    }
  }
  if (source) {
    if (const json* content = find_member(*source, "content")) collect_text(*content, out.user_text);
  }
  out.faults = extract_fault_directives(out.user_text);
  return std::nullopt;
}

std::string_view Reply::piece(std::size_t i) const {
  std::size_t begin = i == 0 ? 0 : piece_ends[i - 1];
  return std::string_view{text}.substr(begin, piece_ends[i] - begin);
}

Reply make_reply(const ChatRequest& req, const Options& opts, const Faults& faults) {
  Reply r;
  bool openai = req.format == ApiFormat::openai;
  if (req.tool_name) {
    r.tool_call = true;
    r.text = dump(ojson{{"query", req.user_text}});
    // Two pieces, like real providers that stream arguments in fragments;
    // never split inside a UTF-8 sequence.
    std::size_t mid = r.text.size() / 2;
    while (mid > 0 && (static_cast<unsigned char>(r.text[mid]) & 0xC0) == 0x80) --mid;
    if (mid > 0) r.piece_ends.push_back(mid);
    r.piece_ends.push_back(r.text.size());
    r.stop_reason = openai ? "tool_calls" : "tool_use";
    r.completion_tokens = count_words(r.text);
    return r;
  }

  if (opts.words > 0) {
    r.text.reserve(static_cast<std::size_t>(opts.words) * 6);
    for (int i = 1; i <= opts.words; ++i) {
      if (i > 1) r.text += ' ';
      r.text += 'w';
      r.text += std::to_string(i);
    }
  } else {
    r.text = "mock reply: " + req.user_text;
  }
  r.piece_ends = split_pieces(r.text);
  r.stop_reason = openai ? "stop" : "end_turn";

  bool honor_max_tokens = !openai || faults.is_honor_max_tokens();
  if (honor_max_tokens && req.max_tokens && *req.max_tokens >= 0 &&
      static_cast<std::uint64_t>(*req.max_tokens) < r.piece_ends.size()) {
    auto keep = static_cast<std::size_t>(*req.max_tokens);
    r.text.resize(keep == 0 ? 0 : r.piece_ends[keep - 1]);
    r.piece_ends.resize(keep);
    r.stop_reason = openai ? "length" : "max_tokens";
  }

  if (faults.is_invalid_utf8() && !r.piece_ends.empty()) {
    // Right after the first word: inside the first streamed piece, no change
    // to the word or piece count, and it survives any max_tokens cut >= 1.
    std::size_t at = 0;
    while (at < r.text.size() && is_space(r.text[at])) ++at;
    while (at < r.text.size() && !is_space(r.text[at])) ++at;
    r.text.insert(at, invalid_utf8_bytes);
    for (std::size_t& end : r.piece_ends) end += invalid_utf8_bytes.size();
  }

  if (int words = faults.big_chunk_words(); words > 1) {
    std::vector<std::size_t> merged;
    for (std::size_t i = 0; i < r.piece_ends.size(); ++i) {
      if ((i + 1) % static_cast<std::size_t>(words) == 0 || i + 1 == r.piece_ends.size())
        merged.push_back(r.piece_ends[i]);
    }
    r.piece_ends = std::move(merged);
  }
  r.completion_tokens = count_words(r.text);
  return r;
}

// Hand-assembled like the stream events: this is the hot path of the
// non-streaming benchmark and a DOM build + dump per reply showed up in profiles.
std::string render_response(const ChatRequest& req, const Reply& reply, std::uint64_t id,
                            std::int64_t created, const Faults& faults) {
  std::int64_t p = req.prompt_tokens;
  std::int64_t c = reply.completion_tokens;
  bool usage = !faults.is_no_usage();
  bool overflow = faults.is_usage_overflow();
  std::string out;
  out.reserve(320 + reply.text.size() + req.model.size());
  if (req.format == ApiFormat::openai) {
    out += "{\"id\":\"chatcmpl-mock-";
    out += std::to_string(id);
    out += "\",\"object\":\"chat.completion\",\"created\":";
    out += std::to_string(created);
    out += ",\"model\":";
    append_json_string(out, req.model);
    out += ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":";
    if (reply.tool_call) {
      out += "null,\"tool_calls\":[{\"id\":\"call_mock_1\",\"type\":\"function\",\"function\":{\"name\":";
      append_json_string(out, *req.tool_name);
      out += ",\"arguments\":";
      append_json_string(out, reply.text);
      out += "}}]";
    } else {
      append_json_string(out, reply.text);
    }
    out += "},\"finish_reason\":";
    append_json_string(out, reply.stop_reason);
    out += "}]";
    if (usage) append_openai_usage(out, p, c, overflow);
    out += "}";
    return out;
  }

  out += "{\"id\":\"msg_mock_";
  out += std::to_string(id);
  out += "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
  append_json_string(out, req.model);
  if (reply.tool_call) {
    out += ",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_mock_1\",\"name\":";
    append_json_string(out, *req.tool_name);
    out += ",\"input\":";
    out += reply.text;  // already a JSON object: {"query": ...}
    out += "}]";
  } else {
    out += ",\"content\":[{\"type\":\"text\",\"text\":";
    append_json_string(out, reply.text);
    out += "}]";
  }
  out += ",\"stop_reason\":";
  append_json_string(out, reply.stop_reason);
  out += ",\"stop_sequence\":null";
  if (usage) {
    out += ",\"usage\":{\"input_tokens\":";
    append_token_count(out, p, overflow);
    out += ",\"output_tokens\":";
    out += std::to_string(c);
    out += "}";
  }
  out += "}";
  return out;
}

std::string render_ndjson_chat(const ChatRequest& req, const Reply& reply, bool with_done) {
  ojson done = {{"model", req.model},
                {"message", {{"role", "assistant"}, {"content", req.stream ? "" : reply.text}}},
                {"done", true},
                {"done_reason", reply.stop_reason == "length" ? "length" : "stop"},
                {"prompt_eval_count", req.prompt_tokens},
                {"eval_count", reply.completion_tokens}};
  if (!req.stream) return dump(done);
  std::string out;
  for (std::size_t i = 0; i < reply.piece_count(); ++i)
    out += dump(ojson{{"model", req.model},
                      {"message", {{"role", "assistant"}, {"content", std::string(reply.piece(i))}}},
                      {"done", false}}) +
           "\n";
  if (with_done) out += dump(done) + "\n";
  return out;
}

std::string render_ndjson_error(std::string_view message) {
  return dump(ojson{{"error", std::string(message)}});
}

std::string render_error(ApiFormat format, int status, std::string_view message, bool raw_bytes) {
  if (raw_bytes) {
    // Same shape as the dump() below, assembled by hand because dump() would
    // repair the very bytes a test wants to see.
    std::string out;
    if (format == ApiFormat::openai) {
      out += "{\"error\":{\"message\":";
      append_json_string(out, message);
      out += ",\"type\":";
      append_json_string(out, openai_error_type(status));
      out += ",\"code\":";
      out += dump(openai_error_code(status));
      out += "}}";
    } else {
      out += "{\"type\":\"error\",\"error\":{\"type\":";
      append_json_string(out, anthropic_error_type(status));
      out += ",\"message\":";
      append_json_string(out, message);
      out += "}}";
    }
    return out;
  }
  if (format == ApiFormat::openai) {
    return dump(ojson{
        {"error",
         {{"message", message}, {"type", openai_error_type(status)}, {"code", openai_error_code(status)}}}});
  }
  return dump(
      ojson{{"type", "error"}, {"error", {{"type", anthropic_error_type(status)}, {"message", message}}}});
}

std::string render_poisoned_response(ApiFormat format, std::string_view model) {
  std::string out;
  if (format == ApiFormat::openai) {
    out +=
        "{\"poisoned\":true,\"id\":\"chatcmpl-mock-poisoned\",\"object\":\"chat.completion\","
        "\"created\":1700000000,\"model\":";
    append_json_string(out, model);
    out +=
        ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"POISONED\"},"
        "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,"
        "\"total_tokens\":2}}";
    return out;
  }
  out +=
      "{\"poisoned\":true,\"id\":\"msg_mock_poisoned\",\"type\":\"message\",\"role\":\"assistant\","
      "\"model\":";
  append_json_string(out, model);
  out +=
      ",\"content\":[{\"type\":\"text\",\"text\":\"POISONED\"}],\"stop_reason\":\"end_turn\","
      "\"stop_sequence\":null,\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}";
  return out;
}

std::string echo_auth_message(ApiFormat format, std::string_view authorization, std::string_view api_key) {
  std::string out;
  if (format == ApiFormat::openai) {
    out += "Incorrect API key provided: ";
    out += authorization;
    out += " (x-api-key: ";
    out += api_key;
  } else {
    out += "invalid x-api-key: ";
    out += api_key;
    out += " (authorization: ";
    out += authorization;
  }
  out += ")";
  return out;
}

std::uint32_t crc32(std::string_view data) {
  // Bitwise CRC-32 (IEEE, reflected, as gzip uses): only faulted responses
  // pay for it, so a table buys nothing.
  std::uint32_t crc = 0xFFFFFFFFu;
  for (char ch : data) {
    crc ^= static_cast<unsigned char>(ch);
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string gzip_stored(std::string_view data) {
  auto put_le = [](std::string& out, std::uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
  };
  // ID1 ID2, CM=deflate, FLG=0, MTIME=0, XFL=0, OS=unknown.
  static constexpr unsigned char header[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
  constexpr std::size_t max_block = 65535;  // LEN is 16 bits
  std::string out(reinterpret_cast<const char*>(header), sizeof header);
  out.reserve(sizeof header + data.size() + 5 * (data.size() / max_block + 1) + 8);
  std::size_t pos = 0;
  do {
    std::size_t len = std::min(max_block, data.size() - pos);
    bool final_block = pos + len == data.size();
    // BFINAL in bit 0, BTYPE=00 (stored); each block starts byte-aligned.
    out += static_cast<char>(final_block ? 1 : 0);
    put_le(out, static_cast<std::uint32_t>(len), 2);
    put_le(out, static_cast<std::uint32_t>(~len & 0xFFFF), 2);
    out.append(data.substr(pos, len));
    pos += len;
  } while (pos < data.size());
  put_le(out, crc32(data), 4);
  put_le(out, static_cast<std::uint32_t>(data.size() & 0xFFFFFFFFu), 4);
  return out;
}

std::optional<std::string> render_embeddings(std::string_view body, std::string& error) {
  json req = json::parse(body, nullptr, false);
  if (!req.is_object()) {
    error = "body is not a JSON object";
    return std::nullopt;
  }
  std::vector<std::string> inputs;
  auto input = req.find("input");
  if (input != req.end() && input->is_string()) {
    inputs.push_back(input->get<std::string>());
  } else if (input != req.end() && input->is_array() && !input->empty()) {
    for (const auto& i : *input) inputs.push_back(i.is_string() ? i.get<std::string>() : i.dump());
  } else {
    error = "'input' is required: a string or an array";
    return std::nullopt;
  }
  size_t dims = req.value("dimensions", 64);
  if (dims == 0 || dims > 4096) {
    error = "dimensions must be 1..4096";
    return std::nullopt;
  }
  json data = json::array();
  size_t tokens = 0;
  for (size_t n = 0; n < inputs.size(); ++n) {
    std::vector<double> v(dims, 0.0);
    std::string word;
    auto flush = [&] {
      if (word.empty()) return;
      uint64_t h = 1469598103934665603ull;  // FNV-1a
      for (unsigned char c : word) h = (h ^ c) * 1099511628211ull;
      v[h % dims] += (h >> 63) ? 1.0 : -1.0;
      word.clear();
      ++tokens;
    };
    for (char c : inputs[n]) {
      if (std::isalnum(static_cast<unsigned char>(c)))
        word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      else
        flush();
    }
    flush();
    double norm = 0;
    for (double x : v) norm += x * x;
    if (norm > 0)
      for (double& x : v) x /= std::sqrt(norm);
    data.push_back({{"object", "embedding"}, {"index", n}, {"embedding", v}});
  }
  json out = {{"object", "list"},
              {"data", std::move(data)},
              {"model", req.value("model", "mock-embed")},
              {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}};
  return out.dump();
}

std::string render_models() {
  ojson data = ojson::array();
  for (const char* id : {"mock-small", "mock-large"}) {
    data.push_back({{"id", id}, {"object", "model"}, {"created", 1700000000}, {"owned_by", "ferry-mock"}});
  }
  return dump(ojson{{"object", "list"}, {"data", std::move(data)}});
}

SseStream::SseStream(const ChatRequest& req, Reply reply, std::uint64_t id, std::int64_t created,
                     const Faults& faults)
    : format_(req.format),
      // An overflowing usage chunk is sent unasked, or the gateway would never see it.
      include_usage_(!faults.is_no_usage() && (req.include_usage || faults.is_usage_overflow())),
      no_usage_(faults.is_no_usage()),
      usage_overflow_(faults.is_usage_overflow()),
      prompt_tokens_(req.prompt_tokens),
      reply_(std::move(reply)),
      id_((req.format == ApiFormat::openai ? "chatcmpl-mock-" : "msg_mock_") + std::to_string(id)),
      model_json_(json_quoted(req.model)),
      tool_name_json_(req.tool_name ? json_quoted(*req.tool_name) : std::string{}),
      created_(created) {}

std::size_t SseStream::prelude_count() const { return format_ == ApiFormat::openai ? 1 : 3; }

std::size_t SseStream::epilogue_count() const {
  if (format_ == ApiFormat::openai) return include_usage_ ? 3 : 2;
  return 3;
}

std::optional<SseStream::Kind> SseStream::next(std::string& out) {
  std::size_t i = step_++;
  std::size_t pre = prelude_count();
  std::size_t n = reply_.piece_count();
  if (i < pre) {
    prelude(i, out);
    return Kind::prelude;
  }
  i -= pre;
  if (i < n) {
    content(i, out);
    return Kind::content;
  }
  i -= n;
  if (i < epilogue_count()) {
    epilogue(i, out);
    return Kind::epilogue;
  }
  step_ = pre + n + epilogue_count();  // stay finished
  return std::nullopt;
}

namespace {

// Streamed chunks are assembled by hand: this runs once per SSE event, and a
// DOM round-trip per event would dominate the benchmark baseline.
void openai_chunk_head(std::string& out, std::string_view id, std::int64_t created,
                       std::string_view model_json) {
  out += "data: {\"id\":\"";
  out += id;
  out += "\",\"object\":\"chat.completion.chunk\",\"created\":";
  out += std::to_string(created);
  out += ",\"model\":";
  out += model_json;
  out += ",\"choices\":[";
}

void anthropic_event(std::string& out, std::string_view name) {
  out += "event: ";
  out += name;
  out += "\ndata: ";
}

}  // namespace

void SseStream::prelude(std::size_t i, std::string& out) const {
  if (format_ == ApiFormat::openai) {
    openai_chunk_head(out, id_, created_, model_json_);
    out += "{\"index\":0,\"delta\":";
    if (reply_.tool_call) {
      out +=
          "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_mock_1\","
          "\"type\":\"function\",\"function\":{\"name\":";
      out += tool_name_json_;
      out += ",\"arguments\":\"\"}}]}";
    } else {
      out += "{\"role\":\"assistant\",\"content\":\"\"}";
    }
    out += ",\"finish_reason\":null}]}\n\n";
    return;
  }
  switch (i) {
    case 0:
      anthropic_event(out, "message_start");
      out += "{\"type\":\"message_start\",\"message\":{\"id\":\"";
      out += id_;
      out += "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
      out += model_json_;
      out += ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null";
      if (!no_usage_) {
        out += ",\"usage\":{\"input_tokens\":";
        append_token_count(out, prompt_tokens_, usage_overflow_);
        out += ",\"output_tokens\":1}";
      }
      out += "}}\n\n";
      break;
    case 1:
      anthropic_event(out, "content_block_start");
      out += "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":";
      if (reply_.tool_call) {
        out += "{\"type\":\"tool_use\",\"id\":\"toolu_mock_1\",\"name\":";
        out += tool_name_json_;
        out += ",\"input\":{}}}\n\n";
      } else {
        out += "{\"type\":\"text\",\"text\":\"\"}}\n\n";
      }
      break;
    default:
      anthropic_event(out, "ping");
      out += "{\"type\":\"ping\"}\n\n";
      break;
  }
}

void SseStream::content(std::size_t i, std::string& out) const {
  std::string_view piece = reply_.piece(i);
  if (format_ == ApiFormat::openai) {
    openai_chunk_head(out, id_, created_, model_json_);
    if (reply_.tool_call) {
      out += "{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":";
      append_json_string(out, piece);
      out += "}}]},\"finish_reason\":null}]}\n\n";
    } else {
      out += "{\"index\":0,\"delta\":{\"content\":";
      append_json_string(out, piece);
      out += "},\"finish_reason\":null}]}\n\n";
    }
    return;
  }
  anthropic_event(out, "content_block_delta");
  out += "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":";
  out += reply_.tool_call ? "{\"type\":\"input_json_delta\",\"partial_json\":"
                          : "{\"type\":\"text_delta\",\"text\":";
  append_json_string(out, piece);
  out += "}}\n\n";
}

void SseStream::epilogue(std::size_t i, std::string& out) const {
  if (format_ == ApiFormat::openai) {
    if (i == 0) {
      openai_chunk_head(out, id_, created_, model_json_);
      out += "{\"index\":0,\"delta\":{},\"finish_reason\":";
      append_json_string(out, reply_.stop_reason);
      out += "}]}\n\n";
    } else if (i == 1 && include_usage_) {
      openai_chunk_head(out, id_, created_, model_json_);
      out += "]";
      append_openai_usage(out, prompt_tokens_, reply_.completion_tokens, usage_overflow_);
      out += "}\n\n";
    } else {
      out += "data: [DONE]\n\n";
    }
    return;
  }
  switch (i) {
    case 0:
      anthropic_event(out, "content_block_stop");
      out += "{\"type\":\"content_block_stop\",\"index\":0}\n\n";
      break;
    case 1:
      anthropic_event(out, "message_delta");
      out += "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":";
      append_json_string(out, reply_.stop_reason);
      out += ",\"stop_sequence\":null}";
      if (!no_usage_) {
        out += ",\"usage\":{\"output_tokens\":";
        out += std::to_string(reply_.completion_tokens);
        out += "}";
      }
      out += "}\n\n";
      break;
    default:
      anthropic_event(out, "message_stop");
      out += "{\"type\":\"message_stop\"}\n\n";
      break;
  }
}

std::string_view SseStream::malformed_event() const {
  // Anthropic clients dispatch on the event name, so the broken payload is
  // sent under a real one to make sure it actually gets parsed.
  return format_ == ApiFormat::openai
             ? std::string_view{"data: {this is not json\n\n"}
             : std::string_view{"event: content_block_delta\ndata: {this is not json\n\n"};
}

std::string_view SseStream::error_event() const {
  return format_ == ApiFormat::openai
               ? std::string_view{"data: {\"error\":{\"message\":\"upstream exploded\",\"type\":\"server_error\","
                                  "\"code\":null}}\n\n"}
               : std::string_view{"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                                  "\"message\":\"Overloaded\"}}\n\n"};
}

std::string_view SseStream::named_error_event() const {
  return format_ == ApiFormat::openai
             ? std::string_view{"event: error\ndata: {\"error\":{\"message\":\"upstream overloaded\","
                                "\"type\":\"server_error\",\"code\":\"overloaded\"}}\n\n"}
             : std::string_view{"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                                "\"message\":\"Overloaded\"}}\n\n"};
}

std::string_view SseStream::typed_error_event() {
  return "data: "
         "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
}

Faults SharedState::on_request(RecordedRequest rec, bool fault_eligible) {
  auto fresh = std::make_shared<const RecordedRequest>(std::move(rec));
  std::shared_ptr<const RecordedRequest> previous;  // freed outside the lock
  Faults faults;
  std::lock_guard lock(mu_);
  ++requests_;
  if (auto it = by_path_.find(fresh->path); it != by_path_.end()) {
    ++it->second;
  } else {
    by_path_.emplace(fresh->path, 1);
  }
  previous = std::exchange(last_, std::move(fresh));
  if (fault_eligible && faults_) {
    faults = faults_->faults;
    if (faults_->count > 0 && --faults_->count == 0) faults_.reset();
  }
  return faults;
}

void SharedState::set_faults(InstanceFaults faults) {
  std::lock_guard lock(mu_);
  if (faults.count == 0) {
    faults_.reset();
  } else {
    faults_ = std::move(faults);
  }
}

void SharedState::clear_faults() {
  std::lock_guard lock(mu_);
  faults_.reset();
}

void SharedState::reset() {
  std::shared_ptr<const RecordedRequest> previous;
  std::lock_guard lock(mu_);
  requests_ = 0;
  by_path_.clear();
  previous = std::move(last_);
  faults_.reset();
}

std::string SharedState::render_stats() const {
  std::uint64_t requests = 0;
  std::map<std::string, std::uint64_t, std::less<>> by_path;
  std::shared_ptr<const RecordedRequest> last;
  {
    std::lock_guard lock(mu_);
    requests = requests_;
    by_path = by_path_;
    last = last_;
  }

  ojson doc = {{"requests", requests}, {"by_path", ojson::object()}};
  for (const auto& [path, n] : by_path) doc["by_path"][path] = n;
  if (!last) {
    doc["last_request"] = nullptr;
    return dump(doc);
  }

  ojson headers = ojson::object();
  for (const auto& [name, value] : last->headers) {
    std::string key = name;
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto it = headers.find(key);
    if (it == headers.end()) {
      headers[key] = value;
    } else {
      *it = it->get<std::string>() + ", " + value;  // HTTP list semantics
    }
  }
  ojson body = ojson::parse(last->body.begin(), last->body.end(), nullptr, false);
  if (body.is_discarded()) body = last->body;
  doc["last_request"] = {{"method", last->method},
                         {"path", last->path},
                         {"headers", std::move(headers)},
                         {"body", std::move(body)}};
  return dump(doc);
}

}  // namespace ferry::mock
