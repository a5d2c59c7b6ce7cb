// {{name}}: a Freeway filter that blocks requests whose text contains a keyword.
//
// The check is case-insensitive (ASCII) and reads the whole request body. Answers and
// streams pass unchanged.
//
// wit-bindgen's C conventions: the callee owns its arguments (free them with the generated
// *_free functions); returned strings and lists must be malloc'd (the generated post-return
// code frees them); a function returning result<T, E> returns true for ok, false for err; an
// option<string> argument is a pointer that is NULL when absent.

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "settings.h"

// Requests containing this word are refused with a 400 naming it.
#define BLOCKED "forbidden"

void exports_filter_metadata(filter_plugin_metadata_t *ret) {
    filter_string_dup(&ret->name, "{{name}}");
    filter_string_dup(&ret->version, "0.1.0");
    ret->kind = FREEWAY_PLUGIN_TYPES_PLUGIN_KIND_FILTER;
    filter_string_dup(&ret->description, "blocks requests containing \"" BLOCKED "\"");
}

bool exports_filter_check_settings(filter_string_t *settings, filter_string_t *err) {
    bool ok = settings_empty((const char *)settings->ptr, settings->len);
    if (!ok) {
        filter_string_dup(err, "{{name}} takes no settings");
    }
    filter_string_free(settings);
    return ok;
}

// Whether `text` contains BLOCKED, ignoring ASCII case.
static bool contains_blocked(const uint8_t *text, size_t len) {
    size_t n = strlen(BLOCKED);
    for (size_t i = 0; i + n <= len; i++) {
        size_t k = 0;
        while (k < n && tolower(text[i + k]) == BLOCKED[k]) {
            k++;
        }
        if (k == n) {
            return true;
        }
    }
    return false;
}

static void internal_error(exports_freeway_plugin_guard_error_t *err, const char *message) {
    memset(err, 0, sizeof(*err));
    err->kind = FREEWAY_PLUGIN_TYPES_ERROR_KIND_INTERNAL;
    filter_string_dup(&err->message, message);
}

bool exports_freeway_plugin_guard_on_request(exports_freeway_plugin_guard_request_info_t *info,
                                             filter_string_t *body, filter_string_t *settings,
                                             exports_freeway_plugin_guard_request_outcome_t *ret,
                                             exports_freeway_plugin_guard_error_t *err) {
    bool ok = settings_empty((const char *)settings->ptr, settings->len);
    if (ok) {
        memset(ret, 0, sizeof(*ret));
        if (contains_blocked(body->ptr, body->len)) {
            ret->verdict.tag = EXPORTS_FREEWAY_PLUGIN_GUARD_REQUEST_VERDICT_BLOCK;
            filter_string_dup(&ret->verdict.val.block,
                              "the request contains the blocked word \"" BLOCKED "\"");
        } else {
            ret->verdict.tag = EXPORTS_FREEWAY_PLUGIN_GUARD_REQUEST_VERDICT_ALLOW;
        }
    } else {
        internal_error(err, "{{name}} takes no settings");
    }
    exports_freeway_plugin_guard_request_info_free(info);
    filter_string_free(body);
    filter_string_free(settings);
    return ok;
}

bool exports_freeway_plugin_guard_on_response(exports_freeway_plugin_guard_request_info_t *info,
                                              filter_string_t *maybe_state, filter_string_t *body,
                                              filter_string_t *settings,
                                              exports_freeway_plugin_guard_response_verdict_t *ret,
                                              exports_freeway_plugin_guard_error_t *err) {
    (void)err;
    ret->tag = EXPORTS_FREEWAY_PLUGIN_GUARD_RESPONSE_VERDICT_ALLOW;
    exports_freeway_plugin_guard_request_info_free(info);
    if (maybe_state) {
        filter_string_free(maybe_state);
    }
    filter_string_free(body);
    filter_string_free(settings);
    return true;
}

// Streams pass unchanged: the resource holds nothing.
struct exports_freeway_plugin_guard_stream_filter_t {
    int unused;
};

exports_freeway_plugin_guard_own_stream_filter_t
exports_freeway_plugin_guard_constructor_stream_filter(exports_freeway_plugin_guard_request_info_t *info,
                                                       filter_string_t *maybe_state,
                                                       filter_string_t *settings) {
    exports_freeway_plugin_guard_request_info_free(info);
    if (maybe_state) {
        filter_string_free(maybe_state);
    }
    filter_string_free(settings);
    exports_freeway_plugin_guard_stream_filter_t *rep = calloc(1, sizeof(*rep));
    return exports_freeway_plugin_guard_stream_filter_new(rep);
}

bool exports_freeway_plugin_guard_method_stream_filter_on_chunk(
    exports_freeway_plugin_guard_borrow_stream_filter_t self, filter_string_t *chunk,
    exports_freeway_plugin_guard_chunk_verdict_t *ret, exports_freeway_plugin_guard_error_t *err) {
    (void)self;
    (void)err;
    filter_string_free(chunk);
    ret->tag = EXPORTS_FREEWAY_PLUGIN_GUARD_CHUNK_VERDICT_PASS;
    return true;
}

bool exports_freeway_plugin_guard_method_stream_filter_finish(
    exports_freeway_plugin_guard_borrow_stream_filter_t self, filter_list_string_t *ret,
    exports_freeway_plugin_guard_error_t *err) {
    (void)self;
    (void)err;
    ret->ptr = NULL;
    ret->len = 0;
    return true;
}

void exports_freeway_plugin_guard_stream_filter_destructor(exports_freeway_plugin_guard_stream_filter_t *rep) {
    free(rep);
}
