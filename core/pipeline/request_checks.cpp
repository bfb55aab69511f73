#include "core/pipeline/request_checks.h"

#include <string_view>

namespace ferry::pipeline {

using json::Value;

const Value* member(const Value& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

bool bool_member(const Value& object, const char* key, bool fallback) {
  const Value* v = member(object, key);
  return v && v->is_boolean() ? v->get<bool>() : fallback;
}

std::optional<int64_t> int_member(const Value& object, const char* key) {
  const Value* v = member(object, key);
  if (!v || !v->is_number_integer()) return std::nullopt;
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return INT64_MAX;
  return v->get<int64_t>();
}

namespace {

Refusal invalid(std::string message, std::string code = "invalid_request") {
  return Refusal{400, std::move(message), std::move(code)};
}

Refusal over(const char* what, uint64_t limit, const char* key) {
  return Refusal{400,
                 std::string("the request has more ") + what + " than the limit of " + std::to_string(limit) +
                     " ([limits] " + key + ")",
                 "limit_exceeded"};
}

bool is_image_part(const Value& part) {
  const Value* type = member(part, "type");
  if (!type || !type->is_string()) return false;
  const auto& t = type->get_ref<const std::string&>();
  return t == "image_url" || t == "image" || t == "input_image";
}

std::optional<Refusal> check_messages(const Value& messages, const config::LimitsConfig& limits) {
  if (!messages.is_array() || messages.empty())
    return invalid("'messages' is required and must be a non-empty array", "missing_messages");
  if (messages.size() > limits.max_messages) return over("messages", limits.max_messages, "max_messages");
  uint64_t images = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Value& m = messages[i];
    const Value* role = member(m, "role");
    if (!role || !role->is_string())
      return invalid("messages[" + std::to_string(i) + "] must be an object with a string 'role'",
                     "invalid_message");
    const Value* content = member(m, "content");
    if (!content || !content->is_array()) continue;
    for (const Value& part : *content)
      if (is_image_part(part) && ++images > limits.max_images)
        return over("images", limits.max_images, "max_images");
  }
  return std::nullopt;
}

// A member that must be a non-negative integer when present (null: absent).
std::optional<Refusal> check_count(const Value& request, const char* key, int64_t min) {
  const Value* v = member(request, key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_number_integer() || int_member(request, key).value_or(min - 1) < min)
    return invalid(std::string("'") + key + "' must be an integer of at least " + std::to_string(min),
                   std::string("invalid_") + key);
  return std::nullopt;
}

}  // namespace

std::optional<Refusal> check_request(const Value& request, RequestContext::Operation operation,
                                     const config::LimitsConfig& limits) {
  if (!request.is_object()) return invalid("request body must be a JSON object");
  const Value* model = member(request, "model");
  if (!model || !model->is_string() || model->get_ref<const std::string&>().empty())
    return invalid("'model' is required and must be a non-empty string", "missing_model");
  if (operation == RequestContext::Operation::kEmbeddings) {
    const Value* input = member(request, "input");
    bool ok = input && ((input->is_string() && !input->get_ref<const std::string&>().empty()) ||
                        (input->is_array() && !input->empty()));
    if (!ok) return invalid("'input' is required: a non-empty string or array", "missing_input");
  } else {
    const Value* messages = member(request, "messages");
    if (auto r = check_messages(messages ? *messages : Value(), limits)) return r;
  }
  if (const Value* s = member(request, "stream"); s && !s->is_boolean() && !s->is_null())
    return invalid("'stream' must be true or false", "invalid_stream");
  if (const Value* so = member(request, "stream_options"); so && !so->is_null()) {
    if (!so->is_object()) return invalid("'stream_options' must be an object", "invalid_stream_options");
    if (const Value* u = member(*so, "include_usage"); u && !u->is_boolean() && !u->is_null())
      return invalid("'stream_options.include_usage' must be true or false", "invalid_stream_options");
  }
  for (const char* key : {"max_tokens", "max_completion_tokens"})
    if (auto r = check_count(request, key, 0)) return r;
  if (auto r = check_count(request, "n", 1)) return r;
  if (const Value* tools = member(request, "tools"); tools && !tools->is_null()) {
    if (!tools->is_array()) return invalid("'tools' must be an array", "invalid_tools");
    if (tools->size() > limits.max_tools) return over("tools", limits.max_tools, "max_tools");
  }
  return std::nullopt;
}

Refusal refuse_unparsable(const json::ParseError& error) {
  switch (error.kind) {
    case json::ParseError::Kind::kLimit: {
      // Name the [limits] key that bounds what was exceeded.
      std::string_view m = error.message;
      const char* key = m.starts_with("nesting")       ? "max_json_depth"
                        : m.starts_with("an object")   ? "max_object_keys"
                        : m.starts_with("an array")    ? "max_array_items"
                        : m.starts_with("more values") ? "max_json_values"
                                                       : "max_string_bytes";
      return Refusal{400, "the request body has " + error.message + " ([limits] " + key + ")",
                     "limit_exceeded"};
    }
    case json::ParseError::Kind::kDuplicateKey:
      return Refusal{400, "request body has a " + error.message, "duplicate_key"};
    default: return Refusal{400, "request body is not valid JSON: " + error.message, "invalid_json"};
  }
}

}  // namespace ferry::pipeline
