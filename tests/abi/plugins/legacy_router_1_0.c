/*
 * A routing strategy written in plain C against the frozen ABI 1.0 headers
 * (tests/abi/v1_0): the last candidate first, then the others backwards, so
 * a test can see that a 1.0 router's order is the fallback chain. It logs the
 * order it chose ("legacy router order=c,b,a") through the host's log service.
 *
 * A 1.0 plugin must never see the host's "$" configuration keys (ABI.md R12:
 * they came in 1.1); this router refuses any configuration key at all, so a
 * host that leaked them could not start with it.
 */
#include <ferry/ferry.h>
#include <string.h>

static const ferry_host_api* host;
static ferry_plugin_handle* self;

static ferry_view view(const char* s) {
  ferry_view v;
  v.ptr = s;
  v.len = strlen(s);
  return v;
}

/* No per-instance state: any non-NULL pointer will do. */
static ferry_instance* const kInstance = (ferry_instance*)&host;

static ferry_status create(const ferry_json* config, ferry_instance** out) {
  size_t n = 0;
  ferry_view key;
  *out = NULL;
  if (host->json_size(config, view(""), &n) == FERRY_OK && n > 0 &&
      host->json_key_at(config, view(""), 0, &key) == FERRY_OK) {
    char pointer[128] = "/";
    size_t len = key.len < sizeof pointer - 2 ? key.len : sizeof pointer - 2;
    memcpy(pointer + 1, key.ptr, len);
    pointer[len + 1] = '\0';
    host->config_error(config, view(pointer),
                       view("the legacy router takes no options (a 1.0 plugin saw this key)"));
    return FERRY_ERR_CONFIG;
  }
  *out = kInstance;
  return FERRY_OK;
}

static void destroy(ferry_instance* instance) { (void)instance; }

static ferry_status route(ferry_instance* instance, ferry_ctx* ctx, const ferry_json* request,
                          const ferry_candidate* const* candidates, size_t count, size_t* order,
                          size_t* order_len) {
  char line[512] = "legacy router order=";
  size_t used = strlen(line), i;
  (void)instance;
  (void)request;
  for (i = 0; i < count; ++i) {
    ferry_view name = candidates[count - 1 - i]->name;
    order[i] = count - 1 - i;
    if (used + name.len + 2 < sizeof line) {
      if (i > 0) line[used++] = ',';
      memcpy(line + used, name.ptr, name.len);
      used += name.len;
    }
  }
  *order_len = count;
  line[used] = '\0';
  host->log(self, ctx, FERRY_LOG_INFO, view(line));
  return FERRY_OK;
}

static const ferry_router_vtable vtable = {sizeof(ferry_router_vtable), create, destroy, route};

static const ferry_plugin_info info = {
    sizeof(ferry_plugin_info), "legacy-router", "1.0.0", FERRY_KIND_ROUTER, NULL, &vtable, NULL};

FERRY_EXPORT ferry_status ferry_plugin_negotiate(ferry_negotiation* n) {
  n->plugin_abi_major = FERRY_ABI_MAJOR;
  n->plugin_abi_minor = FERRY_ABI_MINOR;
  n->plugin = NULL;
  if (n->host_abi_major != FERRY_ABI_MAJOR) return FERRY_ERR_ABI_MISMATCH;
  host = n->host;
  self = n->self;
  n->plugin = &info;
  return FERRY_OK;
}
