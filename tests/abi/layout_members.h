/* The members of every struct of the frozen ABI headers (tests/abi/v1_N),
 * as X-macros: X(struct, member). Each minor lists what it added to the one
 * before. Generated once from those headers, which never change again; a
 * new minor appends FERRY_LAYOUT_1_N for what it adds. */
#ifndef FERRY_TESTS_ABI_LAYOUT_MEMBERS_H
#define FERRY_TESTS_ABI_LAYOUT_MEMBERS_H

#define FERRY_LAYOUT_1_0(X)                   \
  X(ferry_view, ptr)                          \
  X(ferry_view, len)                          \
  X(ferry_http_response, struct_size)         \
  X(ferry_http_response, status)              \
  X(ferry_http_response, body)                \
  X(ferry_http_response, headers)             \
  X(ferry_http_response, json)                \
  X(ferry_sse_event, struct_size)             \
  X(ferry_sse_event, event)                   \
  X(ferry_sse_event, data)                    \
  X(ferry_sse_event, id)                      \
  X(ferry_sse_event, json)                    \
  X(ferry_candidate, struct_size)             \
  X(ferry_candidate, name)                    \
  X(ferry_candidate, healthy)                 \
  X(ferry_candidate, in_flight)               \
  X(ferry_candidate, latency_ewma_us)         \
  X(ferry_candidate, error_rate)              \
  X(ferry_request_summary, struct_size)       \
  X(ferry_request_summary, request_id)        \
  X(ferry_request_summary, pipeline)          \
  X(ferry_request_summary, model)             \
  X(ferry_request_summary, provider)          \
  X(ferry_request_summary, providers_tried)   \
  X(ferry_request_summary, error)             \
  X(ferry_request_summary, status)            \
  X(ferry_request_summary, stream)            \
  X(ferry_request_summary, attempts)          \
  X(ferry_request_summary, latency_us)        \
  X(ferry_request_summary, ttfb_us)           \
  X(ferry_request_summary, prompt_tokens)     \
  X(ferry_request_summary, completion_tokens) \
  X(ferry_host_api, struct_size)              \
  X(ferry_host_api, abi_major)                \
  X(ferry_host_api, abi_minor)                \
  X(ferry_host_api, log)                      \
  X(ferry_host_api, clock_ns)                 \
  X(ferry_host_api, metric)                   \
  X(ferry_host_api, secret_get)               \
  X(ferry_host_api, config_error)             \
  X(ferry_host_api, json_type)                \
  X(ferry_host_api, json_get)                 \
  X(ferry_host_api, json_get_string)          \
  X(ferry_host_api, json_get_number)          \
  X(ferry_host_api, json_get_bool)            \
  X(ferry_host_api, json_size)                \
  X(ferry_host_api, json_key_at)              \
  X(ferry_host_api, json_set)                 \
  X(ferry_host_api, json_remove)              \
  X(ferry_host_api, json_serialize)           \
  X(ferry_host_api, json_new)                 \
  X(ferry_host_api, json_copy)                \
  X(ferry_host_api, ctx_get)                  \
  X(ferry_host_api, ctx_header)               \
  X(ferry_host_api, ctx_set_upstream_header)  \
  X(ferry_host_api, ctx_set_response_header)  \
  X(ferry_host_api, ctx_respond)              \
  X(ferry_host_api, resume)                   \
  X(ferry_host_api, schedule)                 \
  X(ferry_host_api, upstream_set_method)      \
  X(ferry_host_api, upstream_set_url)         \
  X(ferry_host_api, upstream_set_header)      \
  X(ferry_host_api, upstream_set_body)        \
  X(ferry_host_api, upstream_set_body_json)   \
  X(ferry_host_api, upstream_set_streaming)   \
  X(ferry_host_api, headers_get)              \
  X(ferry_host_api, sink_response)            \
  X(ferry_host_api, sink_chunk)               \
  X(ferry_host_api, sink_done)                \
  X(ferry_host_api, sink_error)               \
  X(ferry_provider_vtable, struct_size)       \
  X(ferry_provider_vtable, create)            \
  X(ferry_provider_vtable, destroy)           \
  X(ferry_provider_vtable, build_request)     \
  X(ferry_provider_vtable, parse_response)    \
  X(ferry_provider_vtable, stream_open)       \
  X(ferry_provider_vtable, parse_event)       \
  X(ferry_provider_vtable, stream_close)      \
  X(ferry_provider_vtable, serve)             \
  X(ferry_router_vtable, struct_size)         \
  X(ferry_router_vtable, create)              \
  X(ferry_router_vtable, destroy)             \
  X(ferry_router_vtable, route)               \
  X(ferry_middleware_vtable, struct_size)     \
  X(ferry_middleware_vtable, create)          \
  X(ferry_middleware_vtable, destroy)         \
  X(ferry_middleware_vtable, filter_new)      \
  X(ferry_middleware_vtable, filter_free)     \
  X(ferry_middleware_vtable, on_request)      \
  X(ferry_middleware_vtable, on_response)     \
  X(ferry_middleware_vtable, on_chunk)        \
  X(ferry_middleware_vtable, on_complete)     \
  X(ferry_plugin_info, struct_size)           \
  X(ferry_plugin_info, name)                  \
  X(ferry_plugin_info, version)               \
  X(ferry_plugin_info, kind)                  \
  X(ferry_plugin_info, provider)              \
  X(ferry_plugin_info, router)                \
  X(ferry_plugin_info, middleware)            \
  X(ferry_negotiation, struct_size)           \
  X(ferry_negotiation, host_abi_major)        \
  X(ferry_negotiation, host_abi_minor)        \
  X(ferry_negotiation, host)                  \
  X(ferry_negotiation, self)                  \
  X(ferry_negotiation, plugin_abi_major)      \
  X(ferry_negotiation, plugin_abi_minor)      \
  X(ferry_negotiation, plugin)

#define FERRY_LAYOUT_1_1(X)             \
  FERRY_LAYOUT_1_0(X)                   \
  X(ferry_candidate, ttfb_ewma_us)      \
  X(ferry_candidate, attributes)        \
  X(ferry_event, struct_size)           \
  X(ferry_event, type)                  \
  X(ferry_event, name)                  \
  X(ferry_event, provider)              \
  X(ferry_event, to_provider)           \
  X(ferry_event, model)                 \
  X(ferry_event, pipeline)              \
  X(ferry_event, request_id)            \
  X(ferry_event, detail)                \
  X(ferry_event, time_ns)               \
  X(ferry_provider_vtable, build_probe) \
  X(ferry_middleware_vtable, on_event)

#define FERRY_LAYOUT_1_2(X)             \
  FERRY_LAYOUT_1_1(X)                   \
  X(ferry_state_request, struct_size)   \
  X(ferry_state_request, op)            \
  X(ferry_state_request, flags)         \
  X(ferry_state_request, key)           \
  X(ferry_state_request, value)         \
  X(ferry_state_request, amount)        \
  X(ferry_state_request, limit)         \
  X(ferry_state_request, rate)          \
  X(ferry_state_request, ttl_ms)        \
  X(ferry_state_result, struct_size)    \
  X(ferry_state_result, status)         \
  X(ferry_state_result, applied)        \
  X(ferry_state_result, cancelled)      \
  X(ferry_state_result, value)          \
  X(ferry_state_result, retry_after_ms) \
  X(ferry_state_result, data)           \
  X(ferry_admin_request, struct_size)   \
  X(ferry_admin_request, method)        \
  X(ferry_admin_request, path)          \
  X(ferry_admin_request, query)         \
  X(ferry_admin_request, body)          \
  X(ferry_host_api, state_call)         \
  X(ferry_host_api, ctx_set_tag)        \
  X(ferry_host_api, ctx_get_tag)        \
  X(ferry_host_api, admin_reply)        \
  X(ferry_host_api, json_parse)         \
  X(ferry_host_api, json_free)          \
  X(ferry_host_api, ctx_call)           \
  X(ferry_middleware_vtable, on_admin)  \
  X(ferry_middleware_vtable, on_attempt)

#endif
