#include "core/pipeline/answer_forwarder.h"

#include "core/log/log.h"
#include "core/metrics/metrics.h"
#include "core/pipeline/request_checks.h"

namespace ferry::pipeline {

namespace asio = boost::asio;
using json::Doc;
using json::Value;

namespace {

int64_t int_field(const Value& obj, const char* key) { return int_member(obj, key).value_or(-1); }

// True if `text` has "usage" whose value is an object (not null): the one
// chunk of a stream worth parsing for token counts before it is forwarded.
bool has_usage_object(std::string_view text) {
  for (size_t at = text.find("\"usage\""); at != std::string_view::npos;
       at = text.find("\"usage\"", at + 7)) {
    size_t i = at + 7;
    while (i < text.size() && (text[i] == ' ' || text[i] == ':' || text[i] == '\n' || text[i] == '\t')) ++i;
    if (i < text.size() && text[i] == '{') return true;
  }
  return false;
}

}  // namespace

asio::awaitable<void> AnswerForwarder::deliver_response(Doc& response, std::string_view native) {
  Value* v = response.value();
  if (auto u = v->find("usage"); u != v->end() && u->is_object()) {
    outcome_.prompt_tokens = int_field(*u, "prompt_tokens");
    outcome_.completion_tokens = int_field(*u, "completion_tokens");
  }
  if (chain_.has_response_hooks()) {
    HookOutcome r = co_await chain_.on_response(response);
    if (r.kind == HookOutcome::Kind::kRespond) {
      co_await stream_.respond();
      co_return;
    }
    if (!r.proceeds()) {
      co_await stream_.reply_error(r.http_status(), std::move(r.message), r.error_type(), "plugin_error");
      co_return;
    }
  }
  if (outcome_.completion_tokens < 0) forwarded_.add(response.text());
  bool sent = false;
  if (native.empty())
    sent = co_await stream_.send_answer(response.text());
  else
    sent = co_await stream_.send_native_answer(native);
  if (!sent) stream_.lost_answer();
}

asio::awaitable<bool> AnswerForwarder::deliver_chunk(Doc chunk) {
  if (stream_.client_gone()) co_return false;
  // Every chunk is checked before it is forwarded, so garbage never reaches a
  // client as if it were an answer. The tree is built only when someone needs
  // it (an on_chunk hook, the usage chunk): a validating scan is much cheaper.
  bool valid = chain_.has_chunk_hooks() ? chunk.value() && chunk.value()->is_object() : chunk.is_object();
  if (!valid) {
    // Before anything was sent another provider may still answer.
    rejected_ = Failure::bad_upstream(ctx_.provider, "sent a stream chunk that is not a JSON object");
    if (!stream_.committed()) co_return false;
    co_await stream_.abort(rejected_.message);
    co_return false;
  }
  if (has_usage_object(chunk.text()) && chunk.value()) {
    Value* v = chunk.value();
    if (const Value* u = member(*v, "usage"); u && u->is_object()) {
      outcome_.prompt_tokens = int_field(*u, "prompt_tokens");
      outcome_.completion_tokens = int_field(*u, "completion_tokens");
    }
    if (!stream_.include_usage()) {
      auto choices = v->find("choices");
      if (choices == v->end() || (choices->is_array() && choices->empty())) co_return true;  // withheld
      v->erase("usage");
      chunk.changed();
    }
  }
  if (chain_.has_chunk_hooks()) {
    HookOutcome r = co_await chain_.on_chunk(chunk);
    if (!r.proceeds()) {
      if (!stream_.committed()) stream_.start();
      co_await stream_.abort(r.message);
      co_return false;
    }
  }
  ForwardedText with_this = forwarded_;
  with_this.add(chunk.text());
  if (completion_bound_ >= 0 && with_this.past(completion_bound_, choices_)) {
    over_bound_ = true;  // not forwarded: the caller ends the stream at the bound
    co_return true;
  }
  forwarded_ = with_this;
  stream_.send_chunk(chunk.text());
  co_return true;
}

// An upstream that streams past the request's max_tokens (it ignores it, or
// lies) is stopped there: its connection is dropped so it stops generating,
// and the client's stream ends as if the model had hit the limit. What the
// budget reserved for this request therefore bounds what it costs.
asio::awaitable<void> AnswerForwarder::end_at_bound(const Provider& p) {
  cut_at_bound_ = true;
  log::get().warn("[{}] provider '{}' streamed past max_tokens={}: ending the stream there", ctx_.request_id,
                  p.name, completion_bound_);
  metrics::Registry::global().add("ferry_max_tokens_cut_total{provider=\"" + p.name + "\"}", 1);
  for (int64_t i = 0; i < choices_; ++i)
    stream_.queue(json::dump(
        Value{{"object", "chat.completion.chunk"},
              {"model", requested_model_},
              {"choices",
               Value::array({{{"index", i}, {"delta", Value::object()}, {"finish_reason", "length"}}})}}));
  co_await stream_.finish();
}

}  // namespace ferry::pipeline
