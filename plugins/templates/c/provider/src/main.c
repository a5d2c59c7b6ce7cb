// {{name}}: a Freeway provider adapter for an OpenAI-compatible API ({base_url}/chat/completions,
// Bearer key). Requests pass through with `model` set to the upstream's id; answers pass back
// as they are; errors become typed errors the gateway's failover understands.
//
// wit-bindgen's C conventions: the callee owns its arguments (free them with the generated
// *_free functions); returned strings and lists must be malloc'd (the generated post-return
// code frees them); a function returning result<T, E> returns true for ok, false for err.

#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "provider.h"
#include "settings.h"

typedef exports_freeway_plugin_adapter_error_t error_t_;

void exports_provider_metadata(provider_plugin_metadata_t *ret) {
    provider_string_dup(&ret->name, "{{name}}");
    provider_string_dup(&ret->version, "0.1.0");
    ret->kind = FREEWAY_PLUGIN_TYPES_PLUGIN_KIND_PROVIDER;
    provider_string_dup(&ret->description, "pass-through adapter for an OpenAI-compatible API");
}

bool exports_provider_check_settings(provider_string_t *settings, provider_string_t *err) {
    bool ok = settings_empty((const char *)settings->ptr, settings->len);
    if (!ok) {
        provider_string_dup(err, "{{name}} takes no settings");
    }
    provider_string_free(settings);
    return ok;
}

static void set_error(error_t_ *err, uint8_t kind, bool retryable, int status, const char *message,
                      size_t message_len) {
    memset(err, 0, sizeof(*err));
    err->kind = kind;
    err->retryable = retryable;
    if (status > 0) {
        err->status.is_some = true;
        err->status.val = (uint16_t)status;
    }
    provider_string_dup_n(&err->message, message, message_len);
}

// A growing byte buffer.
typedef struct {
    char *ptr;
    size_t len, cap;
} buffer_t;

static void append(buffer_t *b, const char *s, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->ptr = realloc(b->ptr, b->cap);
    }
    memcpy(b->ptr + b->len, s, n);
    b->len += n;
}

static void append_str(buffer_t *b, const char *s) { append(b, s, strlen(s)); }

// Copies every member but model, stream and stream_options.
static void copy_member(const char *key, size_t key_len, const char *value, size_t value_len,
                        void *ctx) {
    buffer_t *out = ctx;
    const char *dropped[] = {"model", "stream", "stream_options"};
    for (size_t i = 0; i < 3; i++) {
        if (key_len == strlen(dropped[i]) && memcmp(key, dropped[i], key_len) == 0) return;
    }
    append_str(out, ",\"");
    append(out, key, key_len);
    append_str(out, "\":");
    append(out, value, value_len);
}

bool exports_freeway_plugin_adapter_build_request(exports_freeway_plugin_adapter_target_t *target,
                                                  provider_string_t *request,
                                                  exports_freeway_plugin_adapter_http_request_t *ret,
                                                  error_t_ *err) {
    // {"model":"<upstream id>", the client's other members..., the stream fields}
    buffer_t body = {0};
    append_str(&body, "{\"model\":\"");
    for (size_t i = 0; i < target->model.len; i++) {
        char c = (char)target->model.ptr[i];
        if (c == '"' || c == '\\') append_str(&body, "\\");
        append(&body, &c, 1);
    }
    append_str(&body, "\"");
    bool ok = json_members((const char *)request->ptr, request->len, copy_member, &body);
    if (ok) {
        // The gateway needs token usage: ask for it on every stream.
        if (target->stream) append_str(&body, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
        append_str(&body, "}");
        memset(ret, 0, sizeof(*ret));
        provider_string_dup(&ret->method, "POST");
        size_t base = target->base_url.len;
        while (base > 0 && target->base_url.ptr[base - 1] == '/') base--;
        const char *path = "/chat/completions";
        ret->url.len = base + strlen(path);
        ret->url.ptr = malloc(ret->url.len);
        memcpy(ret->url.ptr, target->base_url.ptr, base);
        memcpy(ret->url.ptr + base, path, strlen(path));
        ret->headers.len = 1;
        ret->headers.ptr = calloc(1, sizeof(provider_tuple2_string_string_t));
        provider_string_dup(&ret->headers.ptr[0].f0, "content-type");
        provider_string_dup(&ret->headers.ptr[0].f1, "application/json");
        ret->body.ptr = (uint8_t *)body.ptr;
        ret->body.len = body.len;
        ret->auth.tag = EXPORTS_FREEWAY_PLUGIN_ADAPTER_AUTH_BEARER;
    } else {
        free(body.ptr);
        const char *message = "the request is not a JSON object";
        set_error(err, FREEWAY_PLUGIN_TYPES_ERROR_KIND_BAD_REQUEST, false, 0, message, strlen(message));
    }
    exports_freeway_plugin_adapter_target_free(target);
    provider_string_free(request);
    return ok;
}

// Token usage from an answer or chunk that carries "usage".
static exports_freeway_plugin_adapter_option_usage_t usage_of(const char *s, size_t len) {
    exports_freeway_plugin_adapter_option_usage_t usage = {0};
    const char *at = json_find(s, len, "usage");
    unsigned long long prompt, completion;
    if (at && *at == '{' && json_find_uint(at, len - (size_t)(at - s), "prompt_tokens", &prompt) &&
        json_find_uint(at, len - (size_t)(at - s), "completion_tokens", &completion)) {
        usage.is_some = true;
        usage.val.prompt_tokens = (uint32_t)prompt;
        usage.val.completion_tokens = (uint32_t)completion;
    }
    return usage;
}

// A non-2xx answer as a typed error, with the upstream's `error.message` when it has one.
static void upstream_error(error_t_ *err, uint16_t status, const char *body, size_t len) {
    uint8_t kind = FREEWAY_PLUGIN_TYPES_ERROR_KIND_UNAVAILABLE;
    bool retryable = true;
    switch (status) {
        case 400: case 422: kind = FREEWAY_PLUGIN_TYPES_ERROR_KIND_BAD_REQUEST; retryable = false; break;
        case 401: kind = FREEWAY_PLUGIN_TYPES_ERROR_KIND_AUTH; break;
        case 403: kind = FREEWAY_PLUGIN_TYPES_ERROR_KIND_PERMISSION; break;
        case 404: kind = FREEWAY_PLUGIN_TYPES_ERROR_KIND_NOT_FOUND; break;
        case 408: case 504: kind = FREEWAY_PLUGIN_TYPES_ERROR_KIND_TIMEOUT; break;
        case 429: kind = FREEWAY_PLUGIN_TYPES_ERROR_KIND_RATE_LIMITED; break;
    }
    const char *message = json_find(body, len, "message");
    if (message && *message == '"') {
        size_t end = json_skip_string(body, len, (size_t)(message - body));
        size_t n = end - (size_t)(message - body);
        set_error(err, kind, retryable, status, message + 1, n >= 2 ? n - 2 : 0);
    } else {
        // No printf: it would pull in WASI's file functions (see the README).
        char text[32] = "the upstream answered ";
        size_t n = strlen(text);
        for (int div = 100; div > 0; div /= 10) text[n++] = (char)('0' + status / div % 10);
        set_error(err, kind, retryable, status, text, n);
    }
}

bool exports_freeway_plugin_adapter_parse_response(exports_freeway_plugin_adapter_target_t *target,
                                                   uint16_t status,
                                                   exports_freeway_plugin_adapter_headers_t *headers,
                                                   provider_list_u8_t *body,
                                                   exports_freeway_plugin_adapter_completion_t *ret,
                                                   error_t_ *err) {
    const char *text = (const char *)body->ptr;
    bool ok = status >= 200 && status < 300;
    if (ok) {
        // The answer is already OpenAI's: hand the bytes back as they are.
        ret->body.ptr = body->ptr;
        ret->body.len = body->len;
        ret->usage = usage_of(text, body->len);
        body->ptr = NULL;
        body->len = 0;
    } else {
        upstream_error(err, status, text, body->len);
    }
    exports_freeway_plugin_adapter_target_free(target);
    exports_freeway_plugin_adapter_headers_free(headers);
    provider_list_u8_free(body);
    return ok;
}

static provider_option_u64_t header_number(exports_freeway_plugin_adapter_headers_t *headers,
                                           const char *name) {
    provider_option_u64_t out = {0};
    for (size_t i = 0; i < headers->len; i++) {
        provider_string_t *key = &headers->ptr[i].f0, *value = &headers->ptr[i].f1;
        if (key->len == strlen(name) && memcmp(key->ptr, name, key->len) == 0 && value->len > 0) {
            unsigned long long n = 0;
            size_t k = 0;
            for (; k < value->len && value->ptr[k] >= '0' && value->ptr[k] <= '9'; k++) {
                n = n * 10 + (unsigned)(value->ptr[k] - '0');
            }
            if (k == value->len) {
                out.is_some = true;
                out.val = n;
            }
        }
    }
    return out;
}

void exports_freeway_plugin_adapter_read_rate_limits(uint16_t status,
                                                     exports_freeway_plugin_adapter_headers_t *headers,
                                                     provider_list_u8_t *body,
                                                     exports_freeway_plugin_adapter_rate_limits_t *ret) {
    (void)status;
    memset(ret, 0, sizeof(*ret));
    ret->retry_after_ms = header_number(headers, "retry-after");
    ret->retry_after_ms.val *= 1000;
    ret->limit_requests = header_number(headers, "x-ratelimit-limit-requests");
    ret->remaining_requests = header_number(headers, "x-ratelimit-remaining-requests");
    ret->limit_tokens = header_number(headers, "x-ratelimit-limit-tokens");
    ret->remaining_tokens = header_number(headers, "x-ratelimit-remaining-tokens");
    exports_freeway_plugin_adapter_headers_free(headers);
    provider_list_u8_free(body);
}

// Server-sent events in, one chunk per `data:` event out; frames may split anywhere, so the
// decoder keeps what follows the last blank line.
struct exports_freeway_plugin_adapter_stream_decoder_t {
    buffer_t pending;
};

exports_freeway_plugin_adapter_own_stream_decoder_t
exports_freeway_plugin_adapter_constructor_stream_decoder(exports_freeway_plugin_adapter_target_t *target) {
    exports_freeway_plugin_adapter_target_free(target);
    exports_freeway_plugin_adapter_stream_decoder_t *rep = calloc(1, sizeof(*rep));
    return exports_freeway_plugin_adapter_stream_decoder_new(rep);
}

bool exports_freeway_plugin_adapter_method_stream_decoder_push(
    exports_freeway_plugin_adapter_borrow_stream_decoder_t self, provider_list_u8_t *bytes,
    exports_freeway_plugin_adapter_list_chunk_t *ret, error_t_ *err) {
    (void)err;
    buffer_t *pending = &self->pending;
    for (size_t i = 0; i < bytes->len; i++) {
        if (bytes->ptr[i] != '\r') append(pending, (const char *)&bytes->ptr[i], 1);
    }
    provider_list_u8_free(bytes);
    size_t count = 0, start = 0;
    exports_freeway_plugin_adapter_chunk_t *chunks = NULL;
    for (size_t i = 0; i + 1 < pending->len; i++) {
        if (pending->ptr[i] != '\n' || pending->ptr[i + 1] != '\n') continue;
        // One event: pending[start..i]; each of its `data:` lines is a chunk.
        for (size_t line = start; line < i;) {
            size_t end = line;
            while (end < i && pending->ptr[end] != '\n') end++;
            if (end - line > 5 && memcmp(pending->ptr + line, "data:", 5) == 0) {
                size_t from = json_space(pending->ptr, end, line + 5);
                size_t n = end - from;
                if (n > 0 && !(n == 6 && memcmp(pending->ptr + from, "[DONE]", 6) == 0)) {
                    chunks = realloc(chunks, (count + 1) * sizeof(*chunks));
                    provider_string_dup_n(&chunks[count].data, pending->ptr + from, n);
                    chunks[count].usage = usage_of(pending->ptr + from, n);
                    count++;
                }
            }
            line = end + 1;
        }
        start = i + 2;
        i++;
    }
    memmove(pending->ptr, pending->ptr + start, pending->len - start);
    pending->len -= start;
    ret->ptr = chunks;
    ret->len = count;
    return true;
}

bool exports_freeway_plugin_adapter_method_stream_decoder_finish(
    exports_freeway_plugin_adapter_borrow_stream_decoder_t self,
    exports_freeway_plugin_adapter_list_chunk_t *ret, error_t_ *err) {
    (void)self;
    (void)err;
    ret->ptr = NULL;
    ret->len = 0;
    return true;
}

void exports_freeway_plugin_adapter_stream_decoder_destructor(exports_freeway_plugin_adapter_stream_decoder_t *rep) {
    free(rep->pending.ptr);
    free(rep);
}
