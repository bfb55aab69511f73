/*
 * ferry.h - the binary contract between the Ferry host (ferryd) and its plugins.
 *
 * Contract in prose (the numbered rules with their consequences are in
 * sdk/ABI.md):
 *
 * Loading.  A plugin is a shared library exporting exactly one symbol,
 *   ferry_plugin_negotiate().  The host calls it first and nothing else before
 *   it returns.  Host and plugin exchange {struct_size, abi_major, abi_minor};
 *   the host refuses a plugin whose major differs from its own.  A plugin built
 *   against an older minor keeps loading in a newer host.
 *
 * Growth.  Every struct starts with struct_size and only ever grows at the end.
 *   A reader uses a field only if the writer's struct_size covers it.  A NULL
 *   function pointer in a plugin vtable means "not implemented".  A host
 *   refuses a plugin built against a newer minor than its own, so every host
 *   service in the header a plugin was built with exists in its host.
 *
 * Memory.  Neither side frees the other's memory.  Bytes cross as ferry_view
 *   (pointer + length, borrowed).  A view passed into a plugin hook is valid
 *   until that hook returns; a view the host returns from a service is valid
 *   until the hook that obtained it returns or the document it points into is
 *   modified, whichever comes first.  Whatever a plugin hands to the host is
 *   copied before the host function returns.  Plugin-defined state lives in
 *   plugin-defined structs (ferry_instance, ferry_filter, ferry_stream,
 *   ferry_task) that only the plugin allocates and frees.
 *
 * Threading.  create/destroy run on the host's control thread, never at the
 *   same time as another call on that instance.  Everything else on an
 *   instance may run concurrently on several worker threads, so an instance is
 *   immutable or internally synchronised.  A request (ferry_ctx) and its
 *   per-request objects (ferry_filter, ferry_stream) are used by one worker
 *   thread at a time.  No call may block: a hook that must wait returns
 *   FERRY_PAUSE and later calls host->resume(), which like host->schedule()
 *   and the ferry_sink functions may be called from any thread.
 *
 * Errors.  No C++ exception and no longjmp crosses this boundary.  Status
 *   codes have fixed values that are never reused; a value the host does not
 *   know is treated as FERRY_ERR_INTERNAL.
 *
 * This header is C99 and must stay so.
 */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H

#include <stddef.h>
#include <stdint.h>

#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define FERRY_EXPORT __declspec(dllexport)
#else
#define FERRY_EXPORT __attribute__((visibility("default")))
#endif

/* The one exported symbol every plugin defines. */
#define FERRY_ENTRY_SYMBOL "ferry_plugin_negotiate"

/* ------------------------------------------------------------------------ */
/* Status codes. Fixed values, never reused (ABI.md R10).                    */
/* ------------------------------------------------------------------------ */

typedef int32_t ferry_status;

/* Success, and for hooks: go on with the next stage. */
#define FERRY_OK 0
#define FERRY_CONTINUE 0
/* What a hook asks of the host (ABI 1.3 names it apart from error statuses;
 * same values, so 1.0-1.2 plugins are unchanged): FERRY_ACTION_CONTINUE,
 * FERRY_ACTION_RESPOND, FERRY_ACTION_PAUSE, FERRY_ACTION_SKIP, or an error
 * status (ABI.md R10 says which hook may return which). */
typedef int32_t ferry_action;
#define FERRY_ACTION_CONTINUE 0
#define FERRY_ACTION_RESPOND 1
#define FERRY_ACTION_PAUSE 2
#define FERRY_ACTION_SKIP 3
/* Hook: stop the pipeline and answer with what ctx_respond() set. */
#define FERRY_RESPOND 1
/* Hook: not finished; the plugin will call host->resume() exactly once. */
#define FERRY_PAUSE 2
/* on_attempt (1.2): not this provider; the host tries the next candidate. */
#define FERRY_SKIP 3

#define FERRY_ERR_INVALID_ARGUMENT 100
#define FERRY_ERR_NOT_FOUND 101
#define FERRY_ERR_TYPE_MISMATCH 102
#define FERRY_ERR_PARSE 103
#define FERRY_ERR_ABI_MISMATCH 104
#define FERRY_ERR_UNSUPPORTED 105
#define FERRY_ERR_CONFIG 106
#define FERRY_ERR_BAD_STATE 107
#define FERRY_ERR_UPSTREAM 108
/* A shared-state backend (e.g. Redis) cannot be reached right now (ABI 1.2). */
#define FERRY_ERR_UNAVAILABLE 109
#define FERRY_ERR_INTERNAL 199

/* ------------------------------------------------------------------------ */
/* Bytes and handles.                                                        */
/* ------------------------------------------------------------------------ */

/*
 * A run of bytes, not NUL-terminated, possibly empty (ptr may then be NULL).
 * OWNERSHIP: borrowed. The side that produced it keeps the bytes alive for
 * the lifetime stated where the view is handed over; the receiver never frees
 * them and copies what it wants to keep.
 */
typedef struct ferry_view {
  const char* ptr;
  size_t len;
} ferry_view;

/*
 * Host-owned handles. Incomplete types: only the host knows their layout.
 * OWNERSHIP: host. A plugin never frees one; each is valid for the span
 * given at the place it is handed over.
 */
typedef struct ferry_plugin_handle ferry_plugin_handle; /* this plugin, for log/metrics; load..unload */
typedef struct ferry_ctx ferry_ctx;                 /* one client request; valid until on_complete returns */
typedef struct ferry_json ferry_json;               /* a JSON document (request, response, chunk, config) */
typedef struct ferry_upstream ferry_upstream;       /* the upstream HTTP request a provider builds */
typedef struct ferry_headers ferry_headers;         /* read-only HTTP headers */
typedef struct ferry_sink ferry_sink;               /* where a provider delivers canonical results */
typedef struct ferry_admin_reply ferry_admin_reply; /* the answer to an admin request (1.2) */
typedef struct ferry_output ferry_output;           /* where a frontend writes its wire format (1.3) */

/*
 * Plugin-owned types. Incomplete here; each plugin completes them privately.
 * OWNERSHIP: plugin. Created and freed by the plugin's own functions; the host
 * only passes the pointers back.
 */
typedef struct ferry_instance ferry_instance; /* one configured block of TOML */
typedef struct ferry_filter ferry_filter;     /* middleware state for one request */
typedef struct ferry_stream ferry_stream;     /* provider parse state for one upstream stream */
typedef struct ferry_task ferry_task;         /* the argument of a scheduled callback */
typedef struct ferry_encoder ferry_encoder;   /* frontend state for one answer (1.3) */

/* ------------------------------------------------------------------------ */
/* Small enums (fixed values).                                               */
/* ------------------------------------------------------------------------ */

typedef int32_t ferry_plugin_kind;
#define FERRY_KIND_PROVIDER 1
#define FERRY_KIND_ROUTER 2
#define FERRY_KIND_MIDDLEWARE 3
#define FERRY_KIND_FRONTEND 4 /* ABI 1.3 */

typedef int32_t ferry_log_level;
#define FERRY_LOG_TRACE 0
#define FERRY_LOG_DEBUG 1
#define FERRY_LOG_INFO 2
#define FERRY_LOG_WARN 3
#define FERRY_LOG_ERROR 4

typedef int32_t ferry_json_type;
#define FERRY_JSON_MISSING 0
#define FERRY_JSON_NULL 1
#define FERRY_JSON_BOOL 2
#define FERRY_JSON_NUMBER 3
#define FERRY_JSON_STRING 4
#define FERRY_JSON_ARRAY 5
#define FERRY_JSON_OBJECT 6

typedef int32_t ferry_clock;
#define FERRY_CLOCK_MONOTONIC 0 /* nanoseconds since an arbitrary point */
#define FERRY_CLOCK_REALTIME 1  /* nanoseconds since the Unix epoch */

typedef int32_t ferry_metric_kind;
#define FERRY_METRIC_COUNTER 1   /* value is added */
#define FERRY_METRIC_GAUGE 2     /* value replaces */
#define FERRY_METRIC_HISTOGRAM 3 /* value is one observation, in seconds or bytes */

/* What ctx_get() can read about a request. */
typedef int32_t ferry_ctx_field;
#define FERRY_CTX_REQUEST_ID 1
#define FERRY_CTX_PIPELINE 2
#define FERRY_CTX_MODEL 3       /* the model the client asked for */
#define FERRY_CTX_PROVIDER 4    /* the provider of the current attempt, empty before routing */
#define FERRY_CTX_CLIENT_ADDR 5 /* "ip:port" of the client */
#define FERRY_CTX_STREAM 6      /* "1" if the client asked for a stream, else "0" */
/* ABI 1.2: what is asked, "chat.completions" or "embeddings" (POST /v1/embeddings:
 * the request and the answer are OpenAI embeddings JSON). */
#define FERRY_CTX_OPERATION 7
/* ABI 1.3: the frontend instance (its [frontends.NAME]) the request came in through. */
#define FERRY_CTX_FRONTEND 8
/* ABI 1.3: the client's dialect: the name of the frontend plugin it came
 * through ("openai", "anthropic"). A provider whose upstream speaks it may
 * pass the client's body through (ctx_native_body, upstream_set_dialect). */
#define FERRY_CTX_DIALECT 9

/* ------------------------------------------------------------------------ */
/* Plain data handed to plugins.                                             */
/* ------------------------------------------------------------------------ */

/* An upstream answer, read by provider.parse_response. OWNERSHIP: host; valid
 * until parse_response returns. */
typedef struct ferry_http_response {
  size_t struct_size;
  int32_t status;
  ferry_view body;
  const ferry_headers* headers;
  /* The body as a JSON document, parsed on first access (json_type() of ""
   * gives FERRY_JSON_MISSING if the body is not JSON). */
  const ferry_json* json;
} ferry_http_response;

/* One Server-Sent Event, already framed by the host. A missing "event:" field
 * gives an empty event view. OWNERSHIP: host; valid until parse_event returns. */
typedef struct ferry_sse_event {
  size_t struct_size;
  ferry_view event;
  ferry_view data;
  ferry_view id;
  /* data as a JSON document, parsed on first access, like ferry_http_response.json. */
  const ferry_json* json;
} ferry_sse_event;

/* A provider as a router sees it. OWNERSHIP: host; valid until route returns. */
typedef struct ferry_candidate {
  size_t struct_size;
  ferry_view name;
  uint32_t healthy;         /* 0 if the host currently considers it failing */
  uint32_t in_flight;       /* requests now in flight to it, all threads */
  uint64_t latency_ewma_us; /* smoothed total latency for this model, 0 if unknown */
  double error_rate;        /* recent fraction of failed attempts, 0..1 */
  /* --- ABI 1.1 --- */
  uint64_t ttfb_ewma_us;        /* smoothed time to first upstream byte, this model, 0 if unknown */
  const ferry_json* attributes; /* the provider's `attributes` (tier, price, ...), or NULL */
} ferry_candidate;

/* The outcome of a request, given to middleware on_complete. Token counts are
 * -1 when unknown. OWNERSHIP: host; valid until on_complete returns. */
typedef struct ferry_request_summary {
  size_t struct_size;
  ferry_view request_id;
  ferry_view pipeline;
  ferry_view model;
  ferry_view provider;        /* the provider that answered, empty if none */
  ferry_view providers_tried; /* comma-separated, in order of attempt */
  ferry_view error;           /* empty on success */
  int32_t status;             /* HTTP status sent to the client */
  uint32_t stream;            /* 1 for a streamed answer */
  uint32_t attempts;
  uint64_t latency_us; /* from request received to last byte sent */
  uint64_t ttfb_us;    /* from request received to first body byte sent */
  int64_t prompt_tokens;
  int64_t completion_tokens;
} ferry_request_summary;

/* Something that happened in the gateway (ABI 1.1), given to middleware
 * on_event: a plugin can forward events anywhere. */
typedef int32_t ferry_event_type;
#define FERRY_EVENT_PROVIDER_FAILED 1   /* an attempt failed (detail: the error) */
#define FERRY_EVENT_PROVIDER_SWITCHED 2 /* a request failed over from provider to to_provider */
#define FERRY_EVENT_BREAKER_OPENED 3    /* provider's circuit for model opened */
#define FERRY_EVENT_BREAKER_CLOSED 4    /* ... and closed again */
#define FERRY_EVENT_HEALTH_CHANGED 5    /* a health check changed state (detail: healthy/unhealthy) */

/* OWNERSHIP: host; valid until on_event returns. Empty views for what does
 * not apply (request_id for breaker and health events, to_provider ...). */
typedef struct ferry_event {
  size_t struct_size;
  ferry_event_type type;
  ferry_view name; /* "provider_failed", "provider_switched", ... */
  ferry_view provider;
  ferry_view to_provider;
  ferry_view model;
  ferry_view pipeline;
  ferry_view request_id;
  ferry_view detail;
  uint64_t time_ns; /* FERRY_CLOCK_REALTIME */
} ferry_event;

typedef void (*ferry_task_fn)(ferry_task* task, int32_t cancelled);

/* ------------------------------------------------------------------------ */
/* Shared state (ABI 1.2). One service, three backends chosen in the host's  */
/* TOML ([state] backend = memory | redis | sqlite); a plugin cannot tell    */
/* which one it runs on. Every operation is atomic on its key, also across   */
/* several ferryd instances sharing a Redis. Keys are namespaced per plugin  */
/* by the host ("<plugin name>:<key>").                                      */
/* ------------------------------------------------------------------------ */

typedef int32_t ferry_state_op;
/* The value of key: result.data, or status FERRY_ERR_NOT_FOUND. */
#define FERRY_STATE_GET 1
/* key = value, expiring after ttl_ms (0: never). With FERRY_STATE_IF_ABSENT
 * only when the key does not exist; result.applied says whether it was set. */
#define FERRY_STATE_SET 2
/* Removes key; result.applied is 1 if it existed. */
#define FERRY_STATE_DELETE 3
/* A counter: value += amount, unless amount > 0 and value + amount > limit.
 * A missing key starts at 0 and expires ttl_ms after it was created (0:
 * never), which makes fixed windows and budget periods. result.applied and
 * result.value (after the operation, or the unchanged value if refused). */
#define FERRY_STATE_ADD 4
/* A token bucket of `limit` tokens refilled at `rate` tokens per second, full
 * when new: take `amount` tokens if there are enough. A negative amount gives
 * tokens back (up to the limit). result.value is what is left; when refused,
 * result.retry_after_ms is when `amount` will be there (0 if never: amount >
 * limit). Time is the backend's, so instances share one clock. */
#define FERRY_STATE_TAKE_BUCKET 5
/* A sliding window of ttl_ms admitting at most `limit` per window: take
 * `amount` if the weighted count of the current and previous window leaves
 * room. result.value is the room left, retry_after_ms as for a bucket. */
#define FERRY_STATE_TAKE_WINDOW 6
/* Every key starting with `key` (the prefix): result.data is a JSON array of
 * {"key": ..., "value": ...} with keys without the plugin namespace, at most
 * `limit` entries (0: 1000). For admin listings, not the request path. */
#define FERRY_STATE_SCAN 7

/* Flags. */
#define FERRY_STATE_IF_ABSENT 1u /* SET: only create */
/* ADD, TAKE_*: apply even past the limit (an after-the-fact correction, e.g.
 * actual token usage); result.applied is 1. */
#define FERRY_STATE_FORCE 2u

/* OWNERSHIP: caller; the host copies what it needs before state_call returns. */
typedef struct ferry_state_request {
  size_t struct_size;
  ferry_state_op op;
  uint32_t flags;
  ferry_view key;
  ferry_view value; /* SET */
  double amount;    /* ADD, TAKE_* */
  double limit;     /* ADD: upper bound; TAKE_*: capacity; SCAN: max entries */
  double rate;      /* TAKE_BUCKET: refill, per second */
  uint64_t ttl_ms;  /* SET, ADD: expiry; TAKE_WINDOW: the window */
} ferry_state_request;

/* OWNERSHIP: host; valid until the callback returns. */
typedef struct ferry_state_result {
  size_t struct_size;
  /* FERRY_OK; FERRY_ERR_NOT_FOUND (GET); FERRY_ERR_UNAVAILABLE (the backend is
   * down: the plugin applies its fail-open or fail-closed policy). */
  ferry_status status;
  int32_t applied;
  /* The request the call was made for ended before the answer (its pause timed
   * out): do not touch the ctx, only free the task. */
  int32_t cancelled;
  double value;
  uint64_t retry_after_ms;
  ferry_view data; /* GET, SCAN */
} ferry_state_result;

/* An operator's request to a middleware instance (ABI 1.2), made on the admin
 * listener as METHOD /admin/plugins/<middleware name><path>. OWNERSHIP: host;
 * valid until on_admin returns (copy what a later reply needs). */
typedef struct ferry_admin_request {
  size_t struct_size;
  ferry_view method; /* "GET", "POST", "DELETE", ... */
  ferry_view path;   /* after the middleware's name: "/keys/abc", or "" */
  ferry_view query;  /* after '?', or empty */
  ferry_view body;
} ferry_admin_request;

/* The answer to ctx_call (1.2): the HTTP status and JSON body the internal
 * request got. OWNERSHIP: host; valid until the callback returns. cancelled
 * is 1 if the calling request ended first (do not touch its ctx). */
typedef void (*ferry_call_fn)(ferry_task* task, int32_t http_status, ferry_view json_body, int32_t cancelled);

/* Called exactly once per state_call that returned FERRY_OK. */
typedef void (*ferry_state_fn)(ferry_task* task, const ferry_state_result* result);

/* ------------------------------------------------------------------------ */
/* Provider errors and stream framings (ABI 1.3).                            */
/* ------------------------------------------------------------------------ */

/* What kind of failure an upstream error is: it picks the pipeline's action
 * (retry, failover, return; README "on_error"). DEFAULT: from the status. */
typedef int32_t ferry_error_class;
#define FERRY_ERROR_CLASS_DEFAULT 0
#define FERRY_ERROR_CLASS_CONNECT 1
#define FERRY_ERROR_CLASS_TIMEOUT 2
#define FERRY_ERROR_CLASS_RATE_LIMITED 3
#define FERRY_ERROR_CLASS_SERVER 4
#define FERRY_ERROR_CLASS_CLIENT 5 /* the request itself: never held against the provider */
#define FERRY_ERROR_CLASS_CONTEXT_LENGTH 6
#define FERRY_ERROR_CLASS_CONTENT_FILTER 7
#define FERRY_ERROR_CLASS_AUTH 8

/* An upstream failure as a provider reports it (sink_fail, upstream_refuse).
 * OWNERSHIP: caller; copied before the call returns. */
typedef struct ferry_upstream_error {
  size_t struct_size;
  int32_t http_status;           /* what the client gets if this error is returned */
  ferry_error_class error_class; /* DEFAULT: from http_status and the message */
  ferry_view type;               /* an OpenAI error type, e.g. "rate_limit_error" */
  ferry_view code;               /* optional, e.g. "context_length_exceeded" */
  ferry_view message;
  uint64_t retry_after_ms; /* 0: none */
} ferry_upstream_error;

/* How an upstream's streamed body is cut into events (upstream_set_framing). */
typedef int32_t ferry_framing;
#define FERRY_FRAMING_SSE 0    /* Server-Sent Events: parse_event per event (the default) */
#define FERRY_FRAMING_NDJSON 1 /* one JSON text per line: parse_event per line, event name empty */
#define FERRY_FRAMING_RAW 2    /* bytes as they come: parse_bytes (binary event streams) */

/* ------------------------------------------------------------------------ */
/* Frontends (ABI 1.3): a front door speaking one client dialect.            */
/* ------------------------------------------------------------------------ */

/* What a route asks of the gateway once its request is decoded. */
typedef int32_t ferry_operation;
#define FERRY_OP_NONE 0       /* decode answers by itself (FERRY_RESPOND) */
#define FERRY_OP_CHAT 1       /* the canonical request is an OpenAI chat completion */
#define FERRY_OP_EMBEDDINGS 2 /* ... an OpenAI embeddings request */
#define FERRY_OP_MODELS 3     /* the models this gateway serves (an OpenAI model list) */

/* A route a frontend serves. OWNERSHIP: plugin, static storage (or the
 * instance's, for the instance's life). */
typedef struct ferry_route {
  size_t struct_size;
  const char* method; /* "POST", "GET" */
  /* An absolute path, no query. A '*' in it matches any run of characters
   * but '/': "/v1beta/models/" + "*" + ":generateContent" takes every model. */
  const char* path;
  /* NULL, or a header name: the route is taken only when the request carries
   * it, and then before routes without one ("anthropic-version" tells an
   * Anthropic client's GET /v1/models from an OpenAI one's). */
  const char* header;
  ferry_operation operation;
} ferry_route;

/* A client's request as it arrived. OWNERSHIP: host; valid until decode returns. */
typedef struct ferry_inbound {
  size_t struct_size;
  size_t route; /* index of the matching route in the frontend's routes() array */
  ferry_view method;
  ferry_view path; /* without the query */
  ferry_view query;
  const ferry_headers* headers;
  ferry_view body;
} ferry_inbound;

/* An error the client gets, for encode_error. OWNERSHIP: host; valid until
 * encode_error returns. The gateway's own error types and codes are
 * OpenAI's (type "invalid_request_error", code "model_not_found" ...). */
typedef struct ferry_error_info {
  size_t struct_size;
  int32_t http_status;
  ferry_view type;
  ferry_view code; /* may be empty */
  ferry_view message;
  ferry_view retry_after; /* seconds, empty if none */
  int32_t in_stream;      /* 1: the answer is a stream already under way (an event, not a status) */
} ferry_error_info;

/* ------------------------------------------------------------------------ */
/* Host services. A const table, append-only (ABI.md R5).                    */
/* ------------------------------------------------------------------------ */

typedef struct ferry_host_api {
  size_t struct_size;
  uint32_t abi_major;
  uint32_t abi_minor;

  /* --- Diagnostics. `self` is the handle from negotiation. --- */
  void (*log)(ferry_plugin_handle* self, const ferry_ctx* ctx_or_null, ferry_log_level level,
              ferry_view message);
  uint64_t (*clock_ns)(ferry_clock clock);
  /* name is a Prometheus series name, optionally with labels:
   * ferry_cache_hits_total{pipeline="chat"}. */
  void (*metric)(ferry_plugin_handle* self, ferry_metric_kind kind, ferry_view name, double value);

  /* --- Configuration and secrets. --- */
  /* The environment variable `name`. The view lives as long as the process. */
  ferry_status (*secret_get)(ferry_view name, ferry_view* out);
  /* Reports a problem with the key at JSON pointer `pointer` of a config
   * document; the host prints it as file:line:col and refuses the config. */
  void (*config_error)(const ferry_json* config, ferry_view pointer, ferry_view message);

  /* --- JSON documents, addressed by RFC 6901 pointers ("" is the root). --- */
  ferry_json_type (*json_type)(const ferry_json* doc, ferry_view pointer);
  /* The value serialized as JSON text. */
  ferry_status (*json_get)(const ferry_json* doc, ferry_view pointer, ferry_view* out);
  /* The unescaped bytes of a string value. */
  ferry_status (*json_get_string)(const ferry_json* doc, ferry_view pointer, ferry_view* out);
  ferry_status (*json_get_number)(const ferry_json* doc, ferry_view pointer, double* out);
  ferry_status (*json_get_bool)(const ferry_json* doc, ferry_view pointer, int32_t* out);
  /* Element count of an array or object. */
  ferry_status (*json_size)(const ferry_json* doc, ferry_view pointer, size_t* out);
  /* The key of the index-th member of an object, in document order. */
  ferry_status (*json_key_at)(const ferry_json* doc, ferry_view pointer, size_t index, ferry_view* out);
  /* Parses json_text and stores it at pointer, creating parent objects; a
   * pointer ending in "/-" appends to an array. */
  ferry_status (*json_set)(ferry_json* doc, ferry_view pointer, ferry_view json_text);
  ferry_status (*json_remove)(ferry_json* doc, ferry_view pointer);
  /* The whole document as compact JSON; cached until the next change. */
  ferry_status (*json_serialize)(const ferry_json* doc, ferry_view* out);
  /* A new document owned by the request, freed when the request ends. */
  ferry_status (*json_new)(ferry_ctx* ctx, ferry_view json_text, ferry_json** out);
  ferry_status (*json_copy)(ferry_ctx* ctx, const ferry_json* src, ferry_json** out);

  /* --- The request. Worker thread of the request only. --- */
  ferry_status (*ctx_get)(const ferry_ctx* ctx, ferry_ctx_field field, ferry_view* out);
  /* A header the client sent (name is case-insensitive). */
  ferry_status (*ctx_header)(const ferry_ctx* ctx, ferry_view name, ferry_view* out);
  /* A header added to every upstream request of this request. */
  ferry_status (*ctx_set_upstream_header)(ferry_ctx* ctx, ferry_view name, ferry_view value);
  /* A header added to the response to the client, while it has not started. */
  ferry_status (*ctx_set_response_header)(ferry_ctx* ctx, ferry_view name, ferry_view value);
  /* The answer for a hook that returns FERRY_RESPOND: an HTTP status and a JSON
   * body (an OpenAI chat.completion for a 200, an OpenAI error object otherwise). */
  ferry_status (*ctx_respond)(ferry_ctx* ctx, int32_t status, ferry_view json_body);

  /* --- Asynchrony. Any thread. --- */
  /* Finishes a hook that returned FERRY_PAUSE with FERRY_CONTINUE,
   * FERRY_RESPOND or an error. Exactly once per PAUSE. */
  ferry_status (*resume)(ferry_ctx* ctx, ferry_status result);
  /* Runs fn(task, 0) on the request's worker thread after delay_ns. If the
   * request ends first, fn(task, 1) runs instead, promptly: free the task then. */
  ferry_status (*schedule)(ferry_ctx* ctx, uint64_t delay_ns, ferry_task_fn fn, ferry_task* task);

  /* --- Building an upstream HTTP request (provider.build_request). --- */
  ferry_status (*upstream_set_method)(ferry_upstream* up, ferry_view method);
  /* Absolute http:// or https:// URL. */
  ferry_status (*upstream_set_url)(ferry_upstream* up, ferry_view url);
  /* A header the host must not log (API keys). */
  ferry_status (*upstream_set_header)(ferry_upstream* up, ferry_view name, ferry_view value,
                                      int32_t sensitive);
  ferry_status (*upstream_set_body)(ferry_upstream* up, ferry_view body);
  /* The body is this document, serialized by the host when it sends. */
  ferry_status (*upstream_set_body_json)(ferry_upstream* up, const ferry_json* doc);
  /* 1 if the answer will be Server-Sent Events (parse_event is used). */
  ferry_status (*upstream_set_streaming)(ferry_upstream* up, int32_t streaming);

  ferry_status (*headers_get)(const ferry_headers* headers, ferry_view name, ferry_view* out);

  /* --- Delivering canonical results. Any thread for serve(); otherwise
   * inside the parse hook. Each JSON text is an OpenAI chat.completion
   * (sink_response) or chat.completion.chunk (sink_chunk). --- */
  ferry_status (*sink_response)(ferry_sink* sink, ferry_view json);
  ferry_status (*sink_chunk)(ferry_sink* sink, ferry_view json);
  /* The stream ended normally. */
  ferry_status (*sink_done)(ferry_sink* sink);
  /* The upstream failed. http_status decides failover (ABI.md R15);
   * type is an OpenAI error type such as "server_error". */
  ferry_status (*sink_error)(ferry_sink* sink, int32_t http_status, ferry_view type, ferry_view message);

  /* --- ABI 1.2 --- */
  /* Shared state (see ferry_state_op). With a ctx, fn runs on that request's
   * worker thread (state_call itself must then be called there), possibly
   * before state_call returns; typically it ends a hook that returned
   * FERRY_PAUSE. Without one (create, on_complete, on_event, admin work), fn
   * runs on any thread. Never blocks. */
  ferry_status (*state_call)(ferry_plugin_handle* self, ferry_ctx* ctx_or_null,
                             const ferry_state_request* req, ferry_state_fn fn, ferry_task* task);
  /* Request metadata shared between plugins and shown in the access log, e.g.
   * auth sets "key", "user" and "team" for rate-limit and budget. Worker thread
   * of the request only; the view lives until the tag is set again. */
  ferry_status (*ctx_set_tag)(ferry_ctx* ctx, ferry_view name, ferry_view value);
  ferry_status (*ctx_get_tag)(const ferry_ctx* ctx, ferry_view name, ferry_view* out);
  /* Answers an admin request (middleware on_admin): an HTTP status and a JSON
   * body. Exactly once per on_admin that returned FERRY_OK, from any thread,
   * possibly before on_admin returns; the reply handle is invalid after it. */
  ferry_status (*admin_reply)(ferry_admin_reply* reply, int32_t status, ferry_view json_body);
  /* A document owned by the plugin, outside any request (admin bodies, stored
   * records): parsed from json_text, freed with json_free. Any thread; one
   * thread at a time per document. */
  ferry_status (*json_parse)(ferry_view json_text, ferry_json** out);
  void (*json_free)(ferry_json* doc);
  /* An internal request through this gateway's own pipelines, e.g. an
   * embedding for a semantic cache: operation is "chat.completions" or
   * "embeddings", json_body an OpenAI request whose model picks the pipeline.
   * Routing, failover and breakers apply; middleware does not (a plugin's own
   * calls never re-enter it); never streamed. fn runs once, on the request's
   * worker thread. Worker thread of the request only. */
  ferry_status (*ctx_call)(ferry_ctx* ctx, ferry_view operation, ferry_view json_body, ferry_call_fn fn,
                           ferry_task* task);

  /* --- ABI 1.3: what a frontend writes (worker thread of the request). --- */
  /* A header of the answer, while its head has not been sent. */
  ferry_status (*output_header)(ferry_output* out, ferry_view name, ferry_view value);
  /* The whole answer: status, Content-Type and body. At most once per hook. */
  ferry_status (*output_body)(ferry_output* out, int32_t http_status, ferry_view content_type,
                              ferry_view body);
  /* One Server-Sent Event ("event: <event>" when not empty, then "data: <data>").
   * The first one starts a 200 text/event-stream answer. */
  ferry_status (*output_event)(ferry_output* out, ferry_view event, ferry_view data);
  /* decode only: refuse the request as the client's error. The host then
   * answers it through encode_error, so every error has one shape. */
  ferry_status (*output_error)(ferry_output* out, int32_t http_status, ferry_view type, ferry_view message);

  /* --- ABI 1.3: instances (ABI.md R20). --- */
  /* During create: the handle of the instance being created from `config`, to
   * pass to log, metric and state_call instead of the negotiation's `self`, so
   * that its log lines, metrics and state keys are its own. Valid as long as
   * the instance. NULL for any other document. */
  ferry_plugin_handle* (*instance_self)(const ferry_json* config);

  /* --- ABI 1.3: same-dialect pass-through (ABI.md R21). --- */
  /* The client's body as it arrived, in its dialect (FERRY_CTX_DIALECT), as
   * long as no middleware changed the request: FERRY_ERR_NOT_FOUND otherwise
   * (translate from the canonical request then). Valid for the request's life. */
  ferry_status (*ctx_native_body)(const ferry_ctx* ctx, ferry_view* out);
  /* build_request: this upstream speaks `dialect` and was given the client's
   * native body. Its answer may then reach a client of that dialect as the
   * upstream sent it (encode_native), while the adapter's canonical
   * translation still feeds accounting. */
  ferry_status (*upstream_set_dialect)(ferry_upstream* up, ferry_view dialect);

  /* --- ABI 1.3: typed control (instead of the host-read tags of 1.2). --- */
  /* on_request: the request must have its first byte (its whole answer when
   * not streaming) within ms of its arrival. Only ever shortens the deadline. */
  ferry_status (*ctx_set_deadline)(ferry_ctx* ctx, uint64_t ms);
  /* on_attempt, before returning FERRY_ACTION_SKIP: why this provider is
   * skipped, and when it could take the request (0: unknown); the client's
   * 429 says so when every candidate was skipped. */
  ferry_status (*ctx_skip)(ferry_ctx* ctx, ferry_view reason, uint64_t retry_after_ms);

  /* --- ABI 1.3: what a real adapter needs (ABI.md R15). --- */
  /* build_request: the request cannot go to this provider because of the
   * client's own request (a field it cannot take): answered as the error,
   * with the class and status given, and not held against the provider.
   * Return FERRY_ERR_INVALID_ARGUMENT after it. */
  ferry_status (*upstream_refuse)(ferry_upstream* up, const ferry_upstream_error* error);
  /* build_request: how the streamed answer is framed (default SSE). */
  ferry_status (*upstream_set_framing)(ferry_upstream* up, ferry_framing framing);
  /* sink_error with a class, a code and a retry-after. */
  ferry_status (*sink_fail)(ferry_sink* sink, const ferry_upstream_error* error);
} ferry_host_api;

/* ------------------------------------------------------------------------ */
/* Plugin vtables. NULL members mean "not implemented".                      */
/* ------------------------------------------------------------------------ */

/*
 * A provider adapter. Either the host does the I/O (build_request, then
 * parse_response or stream_open/parse_event/stream_close), or the provider
 * answers by itself without the host's HTTP client (serve), e.g. a mock or an
 * in-process model.
 */
typedef struct ferry_provider_vtable {
  size_t struct_size;
  /* config: the provider's TOML table as JSON, valid during the call. On a bad
   * value call host->config_error() and return FERRY_ERR_CONFIG. */
  ferry_status (*create)(const ferry_json* config, ferry_instance** out);
  void (*destroy)(ferry_instance* instance);

  /* Canonical request -> upstream request. request is read-only. */
  ferry_status (*build_request)(ferry_instance* instance, ferry_ctx* ctx, const ferry_json* request,
                                ferry_upstream* out);
  /* A whole (non-streamed) upstream answer, any status -> sink_response or sink_error. */
  ferry_status (*parse_response)(ferry_instance* instance, ferry_ctx* ctx,
                                 const ferry_http_response* response, ferry_sink* sink);
  /* Streaming: per-stream state (may set *out to NULL if none is needed). */
  ferry_status (*stream_open)(ferry_instance* instance, ferry_ctx* ctx, ferry_stream** out);
  /* One SSE event -> zero or more sink_chunk, then sink_done at the end of the
   * stream, or sink_error. */
  ferry_status (*parse_event)(ferry_instance* instance, ferry_stream* stream, ferry_ctx* ctx,
                              const ferry_sse_event* event, ferry_sink* sink);
  void (*stream_close)(ferry_instance* instance, ferry_stream* stream);

  /* Answers without host I/O. Must eventually call sink_response, sink_done
   * or sink_error exactly once (after any sink_chunk calls). */
  ferry_status (*serve)(ferry_instance* instance, ferry_ctx* ctx, const ferry_json* request,
                        ferry_sink* sink);
  /* --- ABI 1.1 --- */
  /* A cheap request for active health checks (e.g. GET /models); any 2xx
   * answer counts as healthy. Called on the health checker's thread. */
  ferry_status (*build_probe)(ferry_instance* instance, ferry_upstream* out);
  /* --- ABI 1.3 --- */
  /* The upstream's streamed body ended (EOF) with the stream still open: a
   * dialect whose streams end there (no closing event) calls sink_done; one
   * that expected an end leaves it, and the stream counts as cut short. */
  ferry_status (*stream_end)(ferry_instance* instance, ferry_stream* stream, ferry_ctx* ctx,
                             ferry_sink* sink);
  /* FERRY_FRAMING_RAW: the bytes as they arrived, in order, split anywhere;
   * the provider keeps what it cannot decode yet in its ferry_stream. */
  ferry_status (*parse_bytes)(ferry_instance* instance, ferry_stream* stream, ferry_ctx* ctx,
                              ferry_view bytes, ferry_sink* sink);
} ferry_provider_vtable;

/* A routing strategy: orders the candidates; the order is the fallback chain.
 * Since ABI 1.1 a router's config holds "$pipeline": {"name": ..., "providers":
 * [...]}, so it can check its options against the providers it will route
 * (keys starting with '$' are the host's; ABI.md R12). */
typedef struct ferry_router_vtable {
  size_t struct_size;
  ferry_status (*create)(const ferry_json* config, ferry_instance** out);
  void (*destroy)(ferry_instance* instance);
  /* Writes up to count indices into order (capacity count) and their number
   * into *order_len. Candidates left out are not tried. Since 1.1 it may
   * return FERRY_RESPOND after ctx_respond to answer the client itself. */
  ferry_action (*route)(ferry_instance* instance, ferry_ctx* ctx, const ferry_json* request,
                        const ferry_candidate* const* candidates, size_t count, size_t* order,
                        size_t* order_len);
} ferry_router_vtable;

/*
 * Middleware. on_request runs in pipeline order, on_response / on_chunk in
 * reverse order, on_complete for every request that reached on_request, in
 * reverse order, including failed and short-circuited ones.
 */
typedef struct ferry_middleware_vtable {
  size_t struct_size;
  ferry_status (*create)(const ferry_json* config, ferry_instance** out);
  void (*destroy)(ferry_instance* instance);
  /* Per-request state; may set *out to NULL when the plugin keeps none. */
  ferry_status (*filter_new)(ferry_instance* instance, ferry_ctx* ctx, ferry_filter** out);
  void (*filter_free)(ferry_instance* instance, ferry_filter* filter);

  /* CONTINUE, RESPOND (after ctx_respond) or PAUSE. The request may be edited. */
  ferry_action (*on_request)(ferry_instance* instance, ferry_filter* filter, ferry_ctx* ctx,
                             ferry_json* request);
  /* A whole chat.completion; may be edited. CONTINUE, RESPOND or PAUSE. */
  ferry_action (*on_response)(ferry_instance* instance, ferry_filter* filter, ferry_ctx* ctx,
                              ferry_json* response);
  /* One chat.completion.chunk of a streamed answer; may be edited. CONTINUE or
   * PAUSE (RESPOND is refused once the stream has started). */
  ferry_action (*on_chunk)(ferry_instance* instance, ferry_filter* filter, ferry_ctx* ctx, ferry_json* chunk);
  void (*on_complete)(ferry_instance* instance, ferry_filter* filter, ferry_ctx* ctx,
                      const ferry_request_summary* summary);
  /* --- ABI 1.1 --- */
  /* A gateway event. May run on any worker thread (or the health checker's),
   * at the same time as other calls: keep it thread-safe and quick. */
  void (*on_event)(ferry_instance* instance, const ferry_event* event);
  /* --- ABI 1.2 --- */
  /* An operator's request (see ferry_admin_request), on the admin thread,
   * concurrently with request hooks. Return FERRY_OK and call
   * host->admin_reply() once; any other status answers 500. */
  ferry_status (*on_admin)(ferry_instance* instance, const ferry_admin_request* request,
                           ferry_admin_reply* reply);
  /* Before each upstream attempt (retries included), in pipeline order, with
   * the provider chosen (FERRY_CTX_PROVIDER too): CONTINUE, SKIP (try the next
   * candidate; not held against the provider) or PAUSE. E.g. per-provider rate
   * limits. */
  ferry_action (*on_attempt)(ferry_instance* instance, ferry_filter* filter, ferry_ctx* ctx,
                             ferry_view provider);
} ferry_middleware_vtable;

/*
 * A frontend (ABI 1.3): a client dialect. It claims routes, decodes each
 * request into the canonical one (OpenAI chat completions or embeddings) and
 * encodes the gateway's canonical answers, stream chunks and errors back into
 * its dialect. The canonical model flows through middleware, routing and
 * providers unchanged, so every dialect gets every feature.
 */
typedef struct ferry_frontend_vtable {
  size_t struct_size;
  ferry_status (*create)(const ferry_json* config, ferry_instance** out);
  void (*destroy)(ferry_instance* instance);
  /* The routes this instance serves; the array lives as long as the instance.
   * Called once, after create. */
  ferry_status (*routes)(ferry_instance* instance, const ferry_route** out, size_t* count);
  /* request holds the client's body, parsed (for a route with a body); decode
   * rewrites it into the canonical request in place (json_set with pointer ""
   * replaces it whole; a dialect that is the canonical one leaves it).
   * FERRY_OK: the gateway serves the route's operation. FERRY_RESPOND: decode
   * answered through out (output_body / output_event). An error status after
   * output_error: the client's error, answered through encode_error. */
  ferry_action (*decode)(ferry_instance* instance, ferry_ctx* ctx, const ferry_inbound* inbound,
                         ferry_json* request, ferry_output* out);
  /* Per-answer state (may set *out to NULL): opened before the first encode
   * call of a request, closed after its last. */
  ferry_status (*encoder_open)(ferry_instance* instance, ferry_ctx* ctx, ferry_encoder** out);
  void (*encoder_close)(ferry_instance* instance, ferry_encoder* encoder);
  /* A whole canonical answer (a chat.completion, an embeddings list, a model
   * list: FERRY_CTX_OPERATION says which), status 200. */
  ferry_status (*encode_response)(ferry_instance* instance, ferry_encoder* encoder, ferry_ctx* ctx,
                                  const ferry_json* response, ferry_output* out);
  /* One chat.completion.chunk of a streamed answer: zero or more events. */
  ferry_status (*encode_chunk)(ferry_instance* instance, ferry_encoder* encoder, ferry_ctx* ctx,
                               const ferry_json* chunk, ferry_output* out);
  /* The stream finished normally, after its last chunk. */
  ferry_status (*encode_end)(ferry_instance* instance, ferry_encoder* encoder, ferry_ctx* ctx,
                             ferry_output* out);
  /* An error: a whole answer (output_body), or an event when in_stream is 1.
   * After an in-stream error only encode_end follows (a dialect whose streams
   * end with the error event writes nothing there). */
  ferry_status (*encode_error)(ferry_instance* instance, ferry_encoder* encoder, ferry_ctx* ctx,
                               const ferry_error_info* error, ferry_output* out);
  /* Optional. The upstream's own bytes in this frontend's dialect (R21): one
   * Server-Sent Event of a stream (`event`, `data`), each before the
   * canonical chunks translated from it, or the whole answer's body in `data`
   * (`event` empty) when the client did not stream. NULL: never passed through. */
  ferry_status (*encode_native)(ferry_instance* instance, ferry_encoder* encoder, ferry_ctx* ctx,
                                ferry_view event, ferry_view data, ferry_output* out);
} ferry_frontend_vtable;

/* ------------------------------------------------------------------------ */
/* Negotiation: the single exported entry point.                             */
/* ------------------------------------------------------------------------ */

/* What a plugin is. OWNERSHIP: plugin, static storage for the plugin's life. */
typedef struct ferry_plugin_info {
  size_t struct_size;
  const char* name;    /* NUL-terminated, e.g. "openai" */
  const char* version; /* NUL-terminated, the plugin's own version */
  ferry_plugin_kind kind;
  const ferry_provider_vtable* provider;     /* set iff kind == FERRY_KIND_PROVIDER */
  const ferry_router_vtable* router;         /* set iff kind == FERRY_KIND_ROUTER */
  const ferry_middleware_vtable* middleware; /* set iff kind == FERRY_KIND_MIDDLEWARE */
  /* --- ABI 1.3 --- */
  const ferry_frontend_vtable* frontend; /* set iff kind == FERRY_KIND_FRONTEND */
} ferry_plugin_info;

typedef struct ferry_negotiation {
  size_t struct_size; /* in: the host's sizeof(ferry_negotiation) */
  uint32_t host_abi_major;
  uint32_t host_abi_minor;
  const ferry_host_api* host; /* in: valid until the plugin is unloaded */
  ferry_plugin_handle* self;  /* in: pass to log() and metric() */

  uint32_t plugin_abi_major;       /* out: FERRY_ABI_MAJOR the plugin was built with */
  uint32_t plugin_abi_minor;       /* out */
  const ferry_plugin_info* plugin; /* out: NULL if the plugin refuses the host */
} ferry_negotiation;

typedef ferry_status (*ferry_negotiate_fn)(ferry_negotiation* negotiation);

/* Every plugin defines this, and nothing else is looked up. */
FERRY_EXPORT ferry_status ferry_plugin_negotiate(ferry_negotiation* negotiation);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_FERRY_H */
