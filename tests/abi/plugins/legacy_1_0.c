/*
 * A middleware written in plain C against the frozen ABI 1.0 headers
 * (tests/abi/v1_0). It stamps "x-legacy-plugin: 1.0" on every response and
 * fills "user" in requests that have none. If a later host breaks 1.0
 * plugins, the tests that load this one fail.
 */
#include <ferry/ferry.h>
#include <string.h>

static const ferry_host_api* host;

static ferry_view view(const char* s) {
  ferry_view v;
  v.ptr = s;
  v.len = strlen(s);
  return v;
}

/* No per-instance state: any non-NULL pointer will do. */
static ferry_instance* const kInstance = (ferry_instance*)&host;

static ferry_status create(const ferry_json* config, ferry_instance** out) {
  (void)config;
  *out = kInstance;
  return FERRY_OK;
}

static void destroy(ferry_instance* instance) { (void)instance; }

static ferry_status on_request(ferry_instance* instance, ferry_filter* filter, ferry_ctx* ctx,
                               ferry_json* request) {
  (void)instance;
  (void)filter;
  if (host->json_type(request, view("/user")) == FERRY_JSON_MISSING)
    host->json_set(request, view("/user"), view("\"legacy-1.0\""));
  host->ctx_set_response_header(ctx, view("x-legacy-plugin"), view("1.0"));
  return FERRY_CONTINUE;
}

static const ferry_middleware_vtable vtable = {
    sizeof(ferry_middleware_vtable), create, destroy, NULL, NULL, on_request, NULL, NULL, NULL};

static const ferry_plugin_info info = {
    sizeof(ferry_plugin_info), "legacy", "1.0.0", FERRY_KIND_MIDDLEWARE, NULL, NULL, &vtable};

FERRY_EXPORT ferry_status ferry_plugin_negotiate(ferry_negotiation* n) {
  n->plugin_abi_major = FERRY_ABI_MAJOR;
  n->plugin_abi_minor = FERRY_ABI_MINOR;
  n->plugin = NULL;
  if (n->host_abi_major != FERRY_ABI_MAJOR) return FERRY_ERR_ABI_MISMATCH;
  host = n->host;
  n->plugin = &info;
  return FERRY_OK;
}
