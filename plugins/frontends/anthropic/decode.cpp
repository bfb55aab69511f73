#include "decode.h"

#include <vector>

namespace ferry_anthropic {
namespace {

using ferry::sdk::Json;
using ferry::sdk::JsonWriter;

std::string at(std::string_view base, size_t i) { return std::string(base) + "/" + std::to_string(i); }

// "/messages/0/content" -> "messages.0.content", as Anthropic names fields in errors.
std::string field(std::string_view pointer) {
  std::string out(pointer.substr(pointer.starts_with('/') ? 1 : 0));
  for (auto& c : out)
    if (c == '/') c = '.';
  return out;
}

// Reads the client's body, remembering the first thing wrong with it.
class Reader {
 public:
  explicit Reader(const Json& body) : j_(body) {}
  const Json& json() const { return j_; }
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

  void fail(std::string_view pointer, std::string_view why) {
    if (error_.empty()) error_ = field(pointer) + ": " + std::string(why);
  }
  bool is(std::string_view pointer, ferry_json_type type, std::string_view expected) {
    auto t = j_.type(pointer);
    if (t == type) return true;
    if (t != FERRY_JSON_MISSING) fail(pointer, "must be " + std::string(expected));
    return false;
  }
  std::optional<std::string_view> string(std::string_view pointer) {
    if (!is(pointer, FERRY_JSON_STRING, "a string")) return std::nullopt;
    return j_.string(pointer);
  }
  std::string_view required_string(std::string_view pointer) {
    if (!j_.has(pointer)) fail(pointer, "Field required");
    return string(pointer).value_or("");
  }

 private:
  const Json& j_;
  std::string error_;
};

// A user turn's text, image and document blocks as OpenAI content parts.
bool write_part(Reader& r, JsonWriter& w, const std::string& block, std::string_view type) {
  const Json& j = r.json();
  if (type == "text") {
    w.begin_object()
        .key("type")
        .value("text")
        .key("text")
        .value(r.required_string(block + "/text"))
        .end_object();
    return true;
  }
  if (type == "image" || type == "document") {
    std::string src = block + "/source";
    auto kind = r.required_string(src + "/type");
    if (kind == "base64") {
      auto media = r.required_string(src + "/media_type");
      auto data = r.required_string(src + "/data");
      std::string url = "data:" + std::string(media) + ";base64," + std::string(data);
      if (type == "image") {
        w.begin_object().key("type").value("image_url").key("image_url").begin_object().key("url").value(url);
        w.end_object().end_object();
      } else {
        w.begin_object().key("type").value("file").key("file").begin_object().key("file_data").value(url);
        w.key("filename")
            .value(j.string(block + "/title").value_or("document.pdf"))
            .end_object()
            .end_object();
      }
      return true;
    }
    if (kind == "url") {
      auto url = r.required_string(src + "/url");
      if (type == "image") {
        w.begin_object().key("type").value("image_url").key("image_url").begin_object().key("url").value(url);
        w.end_object().end_object();
        return true;
      }
    }
    if (kind == "text" && type == "document") {
      w.begin_object()
          .key("type")
          .value("text")
          .key("text")
          .value(r.required_string(src + "/data"))
          .end_object();
      return true;
    }
    if (!r.failed())
      r.fail(src + "/type", "'" + std::string(kind) + "' is not supported for " + std::string(type));
    return false;
  }
  r.fail(block + "/type", "content block type '" + std::string(type) + "' is not supported here");
  return false;
}

// A tool_result's content: a string, or text blocks joined.
std::string tool_result_text(Reader& r, const std::string& content) {
  const Json& j = r.json();
  if (auto s = j.string(content)) return std::string(*s);
  std::string out;
  if (!r.is(content, FERRY_JSON_ARRAY, "a string or an array of content blocks")) return out;
  for (size_t i = 0, n = j.size(content); i < n; ++i) {
    std::string b = at(content, i);
    if (j.string(b + "/type") == std::optional<std::string_view>("text")) {
      if (!out.empty()) out += "\n";
      out.append(r.required_string(b + "/text"));
    }
  }
  return out;
}

void write_user(Reader& r, JsonWriter& w, const std::string& m) {
  const Json& j = r.json();
  std::string content = m + "/content";
  if (auto s = j.string(content)) {
    w.begin_object().key("role").value("user").key("content").value(*s).end_object();
    return;
  }
  if (!r.is(content, FERRY_JSON_ARRAY, "a string or an array of content blocks")) {
    if (!j.has(content)) r.fail(content, "Field required");
    return;
  }
  // Tool results become "tool" messages of their own, ahead of the turn's other blocks.
  JsonWriter parts;
  parts.begin_array();
  bool any_part = false;
  for (size_t i = 0, n = j.size(content); i < n && !r.failed(); ++i) {
    std::string b = at(content, i);
    auto type = r.required_string(b + "/type");
    if (type == "tool_result") {
      w.begin_object().key("role").value("tool");
      w.key("tool_call_id").value(r.required_string(b + "/tool_use_id"));
      std::string text = tool_result_text(r, b + "/content");
      if (j.boolean(b + "/is_error").value_or(false)) text = "Error: " + text;
      w.key("content").value(text).end_object();
    } else if (write_part(r, parts, b, type)) {
      any_part = true;
    }
  }
  parts.end_array();
  if (any_part) w.begin_object().key("role").value("user").key("content").raw(parts.str()).end_object();
}

void write_assistant(Reader& r, JsonWriter& w, const std::string& m) {
  const Json& j = r.json();
  std::string content = m + "/content";
  if (auto s = j.string(content)) {
    w.begin_object().key("role").value("assistant").key("content").value(*s).end_object();
    return;
  }
  if (!r.is(content, FERRY_JSON_ARRAY, "a string or an array of content blocks")) {
    if (!j.has(content)) r.fail(content, "Field required");
    return;
  }
  std::string text;
  JsonWriter calls;
  calls.begin_array();
  bool any_call = false;
  for (size_t i = 0, n = j.size(content); i < n && !r.failed(); ++i) {
    std::string b = at(content, i);
    auto type = r.required_string(b + "/type");
    if (type == "text") {
      text.append(r.required_string(b + "/text"));
    } else if (type == "tool_use") {
      any_call = true;
      calls.begin_object().key("id").value(r.required_string(b + "/id")).key("type").value("function");
      calls.key("function").begin_object().key("name").value(r.required_string(b + "/name"));
      // OpenAI carries arguments as a JSON string.
      calls.key("arguments")
          .value(r.is(b + "/input", FERRY_JSON_OBJECT, "an object") ? *j.raw(b + "/input") : "{}");
      calls.end_object().end_object();
    } else if (type == "thinking" || type == "redacted_thinking") {
      // Earlier reasoning: providers behind a translation cannot take it back.
    } else {
      r.fail(b + "/type", "content block type '" + std::string(type) + "' is not supported here");
    }
  }
  calls.end_array();
  w.begin_object().key("role").value("assistant").key("content");
  if (text.empty() && any_call)
    w.null();
  else
    w.value(text);
  if (any_call) w.key("tool_calls").raw(calls.str());
  w.end_object();
}

void write_system(Reader& r, JsonWriter& w) {
  const Json& j = r.json();
  std::string system;
  if (auto s = j.string("/system")) {
    system = *s;
  } else if (r.is("/system", FERRY_JSON_ARRAY, "a string or an array of text blocks")) {
    for (size_t i = 0, n = j.size("/system"); i < n; ++i) {
      std::string b = at("/system", i);
      if (r.required_string(b + "/type") != "text") r.fail(b + "/type", "must be 'text'");
      if (!system.empty()) system += "\n\n";
      system.append(r.required_string(b + "/text"));
    }
  }
  if (!system.empty()) w.begin_object().key("role").value("system").key("content").value(system).end_object();
}

void write_tools(Reader& r, JsonWriter& w) {
  const Json& j = r.json();
  if (!r.is("/tools", FERRY_JSON_ARRAY, "an array")) return;
  w.key("tools").begin_array();
  for (size_t i = 0, n = j.size("/tools"); i < n; ++i) {
    std::string t = at("/tools", i);
    auto type = r.string(t + "/type").value_or("custom");
    if (type != "custom") {
      r.fail(t + "/type", "server tool '" + std::string(type) + "' is not supported here");
      break;
    }
    w.begin_object().key("type").value("function").key("function").begin_object();
    w.key("name").value(r.required_string(t + "/name"));
    if (auto d = r.string(t + "/description")) w.key("description").value(*d);
    if (r.is(t + "/input_schema", FERRY_JSON_OBJECT, "an object"))
      w.key("parameters").raw(*j.raw(t + "/input_schema"));
    else
      r.fail(t + "/input_schema", "Field required");
    w.end_object().end_object();
  }
  w.end_array();
}

void write_tool_choice(Reader& r, JsonWriter& w) {
  const Json& j = r.json();
  if (!r.is("/tool_choice", FERRY_JSON_OBJECT, "an object")) return;
  auto type = r.required_string("/tool_choice/type");
  if (type == "auto") {
    w.key("tool_choice").value("auto");
  } else if (type == "any") {
    w.key("tool_choice").value("required");
  } else if (type == "none") {
    w.key("tool_choice").value("none");
  } else if (type == "tool") {
    w.key("tool_choice").begin_object().key("type").value("function").key("function").begin_object();
    w.key("name").value(r.required_string("/tool_choice/name")).end_object().end_object();
  } else if (!r.failed()) {
    r.fail("/tool_choice/type", "must be one of 'auto', 'any', 'tool', 'none'");
  }
  if (j.boolean("/tool_choice/disable_parallel_tool_use").value_or(false))
    w.key("parallel_tool_calls").value(false);
}

// A number the client sends, copied as it is once its type is right.
void copy_number(Reader& r, JsonWriter& w, std::string_view from, std::string_view to) {
  if (r.is(from, FERRY_JSON_NUMBER, "a number")) w.key(to).raw(*r.json().raw(from));
}

}  // namespace

Decoded to_canonical(const Json& body, bool for_counting) {
  Reader r(body);
  Decoded out;
  if (body.type("") != FERRY_JSON_OBJECT) {
    out.error = "the request body must be a JSON object";
    return out;
  }
  JsonWriter w;
  w.begin_object();
  w.key("model").value(r.required_string("/model"));
  if (!for_counting) {
    if (!body.has("/max_tokens")) r.fail("/max_tokens", "Field required");
    if (r.is("/max_tokens", FERRY_JSON_NUMBER, "an integer")) {
      auto n = body.number("/max_tokens").value_or(0);
      if (n < 1 || n != static_cast<double>(static_cast<int64_t>(n)) || n > 1e9)
        r.fail("/max_tokens", "must be a positive integer");
      else
        w.key("max_tokens").value(static_cast<int64_t>(n));
    }
  }

  w.key("messages").begin_array();
  write_system(r, w);
  if (!body.has("/messages")) r.fail("/messages", "Field required");
  if (r.is("/messages", FERRY_JSON_ARRAY, "an array")) {
    for (size_t i = 0, n = body.size("/messages"); i < n && !r.failed(); ++i) {
      std::string m = at("/messages", i);
      if (!r.is(m, FERRY_JSON_OBJECT, "an object")) break;
      auto role = r.required_string(m + "/role");
      if (role == "user")
        write_user(r, w, m);
      else if (role == "assistant")
        write_assistant(r, w, m);
      else if (!r.failed())
        r.fail(m + "/role", "must be 'user' or 'assistant'");
    }
  }
  w.end_array();

  copy_number(r, w, "/temperature", "temperature");
  copy_number(r, w, "/top_p", "top_p");
  if (r.is("/top_k", FERRY_JSON_NUMBER, "an integer")) w.key("top_k").raw(*body.raw("/top_k"));
  if (r.is("/stop_sequences", FERRY_JSON_ARRAY, "an array of strings")) {
    for (size_t i = 0, n = body.size("/stop_sequences"); i < n; ++i) r.string(at("/stop_sequences", i));
    w.key("stop").raw(*body.raw("/stop_sequences"));
  }
  if (r.is("/metadata", FERRY_JSON_OBJECT, "an object"))
    if (auto user = r.string("/metadata/user_id")) w.key("user").value(*user);
  if (body.has("/tools")) write_tools(r, w);
  if (body.has("/tool_choice")) write_tool_choice(r, w);
  r.is("/thinking", FERRY_JSON_OBJECT, "an object");  // checked; not translatable to the canonical request
  if (r.is("/stream", FERRY_JSON_BOOL, "a boolean") && body.boolean("/stream").value_or(false) &&
      !for_counting) {
    // Usage arrives in the stream's last chunk: message_delta reports it.
    w.key("stream")
        .value(true)
        .key("stream_options")
        .begin_object()
        .key("include_usage")
        .value(true)
        .end_object();
  }
  w.end_object();
  if (r.failed())
    out.error = r.error();
  else
    out.canonical = w.take();
  return out;
}

}  // namespace ferry_anthropic
