/* Compiled with the installed SDK's pkg-config flags only. */
#include <ferry/ferry.h>

ferry_status ferry_plugin_negotiate(ferry_negotiation* n) {
  n->plugin_abi_major = FERRY_ABI_MAJOR;
  n->plugin_abi_minor = FERRY_ABI_MINOR;
  n->plugin = NULL;
  return FERRY_ERR_UNSUPPORTED;
}
