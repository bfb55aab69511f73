/*
 * A provider adapter written by hand in plain C against the frozen ABI 1.0
 * headers (tests/abi/v1_0), for an OpenAI-compatible upstream. The host does
 * the I/O; this adapter builds the upstream request and parses the answer,
 * whole or streamed. So that a test can tell its work from a pass-through,
 * it marks what it produces:
 *   - every upstream request carries "x-legacy-provider: 1.0";
 *   - answers and chunks carry "system_fingerprint": "ferry-legacy-c";
 *   - each chunk of a stream carries "x_legacy_seq": 1, 2, ... counted in its
 *     per-stream state (stream_open / stream_close);
 *   - upstream errors keep their status and say "legacy upstream HTTP <n>".
 *
 * [providers.NAME] options: base_url (required), api_key_env, model (sent
 * instead of the client's model).
 */
#include <ferry/ferry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ferry_host_api* host;

static const char kFingerprint[] = "\"ferry-legacy-c\"";

static ferry_view view(const char* s) {
  ferry_view v;
  v.ptr = s;
  v.len = strlen(s);
  return v;
}

static ferry_view view_n(const char* s, size_t n) {
  ferry_view v;
  v.ptr = s;
  v.len = n;
  return v;
}

static int view_is(ferry_view v, const char* s) {
  size_t n = strlen(s);
  return v.len == n && (n == 0 || memcmp(v.ptr, s, n) == 0);
}

/* A NUL-terminated copy of a view; NULL if out of memory. */
static char* copy_view(ferry_view v, const char* prefix, const char* suffix) {
  size_t p = strlen(prefix), s = strlen(suffix);
  char* out = (char*)malloc(p + v.len + s + 1);
  if (!out) return NULL;
  memcpy(out, prefix, p);
  if (v.len) memcpy(out + p, v.ptr, v.len);
  memcpy(out + p + v.len, suffix, s + 1);
  return out;
}

struct ferry_instance {
  char* url;           /* base_url + "/chat/completions" */
  char* authorization; /* "Bearer <key>", or NULL */
  char* model_json;    /* "\"<model>\"", or NULL */
};

struct ferry_stream {
  unsigned events; /* chunks delivered so far */
};

static void destroy(ferry_instance* in) {
  if (!in) return;
  free(in->url);
  free(in->authorization);
  free(in->model_json);
  free(in);
}

static ferry_status bad(const ferry_json* config, ferry_instance* in, const char* pointer, const char* why) {
  host->config_error(config, view(pointer), view(why));
  destroy(in);
  return FERRY_ERR_CONFIG;
}

static ferry_status create(const ferry_json* config, ferry_instance** out) {
  ferry_instance* in = (ferry_instance*)calloc(1, sizeof *in);
  ferry_view v;
  size_t n = 0, i;
  *out = NULL;
  if (!in) return FERRY_ERR_INTERNAL;
  if (host->json_size(config, view(""), &n) == FERRY_OK) {
    for (i = 0; i < n; ++i) {
      ferry_view key;
      char pointer[128];
      if (host->json_key_at(config, view(""), i, &key) != FERRY_OK) continue;
      if (view_is(key, "base_url") || view_is(key, "api_key_env") || view_is(key, "model")) continue;
      snprintf(pointer, sizeof pointer, "/%.*s", (int)(key.len < 100 ? key.len : 100), key.ptr);
      return bad(config, in, pointer, "unknown key (expected base_url, api_key_env, model)");
    }
  }

  if (host->json_get_string(config, view("/base_url"), &v) != FERRY_OK)
    return bad(config, in, "/base_url", "is required: the upstream's OpenAI-compatible base URL");
  if (!(v.len > 7 && memcmp(v.ptr, "http://", 7) == 0) && !(v.len > 8 && memcmp(v.ptr, "https://", 8) == 0))
    return bad(config, in, "/base_url", "must start with http:// or https://");
  while (v.len && v.ptr[v.len - 1] == '/') --v.len;
  in->url = copy_view(v, "", "/chat/completions");

  if (host->json_get_string(config, view("/api_key_env"), &v) == FERRY_OK && v.len) {
    char* name = copy_view(v, "", "");
    ferry_view secret;
    ferry_status st = name ? host->secret_get(view(name), &secret) : FERRY_ERR_INTERNAL;
    free(name);
    if (st != FERRY_OK || secret.len == 0)
      return bad(config, in, "/api_key_env", "environment variable is not set");
    in->authorization = copy_view(secret, "Bearer ", "");
    if (!in->authorization) return bad(config, in, "/api_key_env", "out of memory");
  }

  if (host->json_get_string(config, view("/model"), &v) == FERRY_OK && v.len) {
    size_t k;
    for (k = 0; k < v.len; ++k)
      if (v.ptr[k] == '"' || v.ptr[k] == '\\' || (unsigned char)v.ptr[k] < 0x20)
        return bad(config, in, "/model", "must be a plain model name");
    in->model_json = copy_view(v, "\"", "\"");
  }
  if (!in->url) return bad(config, in, "/base_url", "out of memory");
  *out = in;
  return FERRY_OK;
}

static ferry_status build_request(ferry_instance* in, ferry_ctx* ctx, const ferry_json* request,
                                  ferry_upstream* up) {
  ferry_view stream;
  ferry_status st;
  host->upstream_set_method(up, view("POST"));
  host->upstream_set_url(up, view(in->url));
  host->upstream_set_header(up, view("content-type"), view("application/json"), 0);
  host->upstream_set_header(up, view("x-legacy-provider"), view("1.0"), 0);
  if (in->authorization) host->upstream_set_header(up, view("authorization"), view(in->authorization), 1);
  if (host->ctx_get(ctx, FERRY_CTX_STREAM, &stream) == FERRY_OK && view_is(stream, "1"))
    host->upstream_set_streaming(up, 1);
  if (in->model_json) {
    ferry_json* copy = NULL;
    st = host->json_copy(ctx, request, &copy);
    if (st != FERRY_OK) return st;
    st = host->json_set(copy, view("/model"), view(in->model_json));
    if (st != FERRY_OK) return st;
    return host->upstream_set_body_json(up, copy);
  }
  return host->upstream_set_body_json(up, request);
}

/* doc + "system_fingerprint" (and x_legacy_seq when seq > 0), serialized. */
static ferry_status marked(ferry_ctx* ctx, const ferry_json* doc, unsigned seq, ferry_view* out) {
  ferry_json* copy = NULL;
  ferry_status st = host->json_copy(ctx, doc, &copy);
  if (st != FERRY_OK) return st;
  st = host->json_set(copy, view("/system_fingerprint"), view(kFingerprint));
  if (st == FERRY_OK && seq > 0) {
    char number[24];
    snprintf(number, sizeof number, "%u", seq);
    st = host->json_set(copy, view("/x_legacy_seq"), view(number));
  }
  if (st != FERRY_OK) return st;
  return host->json_serialize(copy, out);
}

static ferry_status parse_response(ferry_instance* in, ferry_ctx* ctx, const ferry_http_response* r,
                                   ferry_sink* sink) {
  char message[512];
  ferry_view text, type;
  (void)in;
  if (r->status >= 200 && r->status < 300) {
    ferry_view out;
    ferry_status st;
    if (host->json_type(r->json, view("/choices")) != FERRY_JSON_ARRAY)
      return host->sink_error(sink, 502, view("upstream_error"),
                              view("legacy upstream answer has no choices"));
    st = marked(ctx, r->json, 0, &out);
    if (st != FERRY_OK) return st;
    return host->sink_response(sink, out);
  }
  if (host->json_get_string(r->json, view("/error/message"), &text) != FERRY_OK)
    text = view_n(r->body.ptr, r->body.len < 200 ? r->body.len : 200);
  if (host->json_get_string(r->json, view("/error/type"), &type) != FERRY_OK)
    type = view(r->status == 429   ? "rate_limit_error"
                : r->status >= 500 ? "server_error"
                                   : "invalid_request_error");
  snprintf(message, sizeof message, "legacy upstream HTTP %d: %.*s", (int)r->status, (int)text.len,
           text.ptr ? text.ptr : "");
  return host->sink_error(sink, r->status, type, view(message));
}

static ferry_status stream_open(ferry_instance* in, ferry_ctx* ctx, ferry_stream** out) {
  (void)in;
  (void)ctx;
  *out = (ferry_stream*)calloc(1, sizeof **out);
  return *out ? FERRY_OK : FERRY_ERR_INTERNAL;
}

static ferry_status parse_event(ferry_instance* in, ferry_stream* s, ferry_ctx* ctx,
                                const ferry_sse_event* ev, ferry_sink* sink) {
  ferry_view out;
  ferry_status st;
  (void)in;
  if (view_is(ev->data, "[DONE]")) return host->sink_done(sink);
  if (host->json_type(ev->json, view("/error")) == FERRY_JSON_OBJECT)
    return host->sink_error(sink, 502, view("server_error"), view("legacy upstream sent an error event"));
  if (host->json_type(ev->json, view("")) != FERRY_JSON_OBJECT)
    return host->sink_error(sink, 502, view("upstream_error"),
                            view("legacy upstream sent an event that is not JSON"));
  st = marked(ctx, ev->json, ++s->events, &out);
  if (st != FERRY_OK) return st;
  return host->sink_chunk(sink, out);
}

static void stream_close(ferry_instance* in, ferry_stream* s) {
  (void)in;
  free(s);
}

static const ferry_provider_vtable vtable = {sizeof(ferry_provider_vtable),
                                             create,
                                             destroy,
                                             build_request,
                                             parse_response,
                                             stream_open,
                                             parse_event,
                                             stream_close,
                                             NULL};

static const ferry_plugin_info info = {
    sizeof(ferry_plugin_info), "legacy-provider", "1.0.0", FERRY_KIND_PROVIDER, &vtable, NULL, NULL};

FERRY_EXPORT ferry_status ferry_plugin_negotiate(ferry_negotiation* n) {
  n->plugin_abi_major = FERRY_ABI_MAJOR;
  n->plugin_abi_minor = FERRY_ABI_MINOR;
  n->plugin = NULL;
  if (n->host_abi_major != FERRY_ABI_MAJOR) return FERRY_ERR_ABI_MISMATCH;
  host = n->host;
  n->plugin = &info;
  return FERRY_OK;
}
