// {{name}}: a Freeway router that tries the cheapest ready candidate first.
//
// Ready means healthy and not cooling down; candidates that are not ready come after the ready
// ones (also cheapest first), so failover can still reach them.
//
// wit-bindgen's C conventions: the callee owns its arguments (free them with the generated
// *_free functions); returned strings and lists must be malloc'd (the generated post-return
// code frees them); a function returning result<T, E> returns true for ok, false for err.

#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "settings.h"

void exports_router_metadata(router_plugin_metadata_t *ret) {
    router_string_dup(&ret->name, "{{name}}");
    router_string_dup(&ret->version, "0.1.0");
    ret->kind = FREEWAY_PLUGIN_TYPES_PLUGIN_KIND_ROUTER;
    router_string_dup(&ret->description, "tries the cheapest ready candidate first");
}

bool exports_router_check_settings(router_string_t *settings, router_string_t *err) {
    bool ok = settings_empty((const char *)settings->ptr, settings->len);
    if (!ok) {
        router_string_dup(err, "{{name}} takes no settings");
    }
    router_string_free(settings);
    return ok;
}

static const exports_freeway_plugin_policy_candidate_t *sorting;

static int not_ready(const exports_freeway_plugin_policy_candidate_t *c) {
    return !(c->healthy && c->cooldown_ms == 0);
}

// Ready first, then cheapest (prompt + completion price); ties keep their configured order.
static int by_price(const void *a, const void *b) {
    const exports_freeway_plugin_policy_candidate_t *x = &sorting[*(const uint32_t *)a];
    const exports_freeway_plugin_policy_candidate_t *y = &sorting[*(const uint32_t *)b];
    if (not_ready(x) != not_ready(y)) {
        return not_ready(x) - not_ready(y);
    }
    double px = x->input_price + x->output_price, py = y->input_price + y->output_price;
    if (px != py) {
        return px < py ? -1 : 1;
    }
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

bool exports_freeway_plugin_policy_route(exports_freeway_plugin_policy_request_info_t *request,
                                         exports_freeway_plugin_policy_list_candidate_t *candidates,
                                         router_string_t *settings, router_list_u32_t *ret,
                                         exports_freeway_plugin_policy_error_t *err) {
    bool ok = settings_empty((const char *)settings->ptr, settings->len);
    if (ok) {
        size_t n = candidates->len;
        uint32_t *positions = malloc((n ? n : 1) * sizeof(uint32_t));
        for (size_t i = 0; i < n; i++) {
            positions[i] = (uint32_t)i;
        }
        sorting = candidates->ptr;
        qsort(positions, n, sizeof(uint32_t), by_price);
        for (size_t i = 0; i < n; i++) {
            positions[i] = candidates->ptr[positions[i]].id;
        }
        ret->ptr = positions;
        ret->len = n;
    } else {
        memset(err, 0, sizeof(*err));
        err->kind = FREEWAY_PLUGIN_TYPES_ERROR_KIND_INTERNAL;
        router_string_dup(&err->message, "{{name}} takes no settings");
    }
    exports_freeway_plugin_policy_request_info_free(request);
    exports_freeway_plugin_policy_list_candidate_free(candidates);
    router_string_free(settings);
    return ok;
}
