#pragma once

#include <optional>
#include <string>

#include "core/config/config.h"
#include "core/json/parse.h"
#include "core/pipeline/request_context.h"

namespace ferry::pipeline {

// Why a client request is refused before any plugin sees it: a 4xx in the
// OpenAI error shape.
struct Refusal {
  int status = 400;
  std::string message;
  std::string code;
};

// The members the host itself reads (model, messages, input, stream,
// stream_options, max_tokens, n, tools) must have the right types, and the
// request's shape must stay within [limits] (messages, tools, images).
// Everything else is the plugins' and the upstream's to judge.
std::optional<Refusal> check_request(const json::Value& request, RequestContext::Operation operation,
                                     const config::LimitsConfig& limits);

// The request's parse failed: the refusal that says why.
Refusal refuse_unparsable(const json::ParseError& error);

// Typed reads that never throw, for client and plugin JSON.
const json::Value* member(const json::Value& object, const char* key);
bool bool_member(const json::Value& object, const char* key, bool fallback = false);
std::optional<int64_t> int_member(const json::Value& object, const char* key);

}  // namespace ferry::pipeline
