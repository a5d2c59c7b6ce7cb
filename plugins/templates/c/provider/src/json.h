// Just enough JSON for a pass-through adapter, with no library: skip a value, walk the
// members of the top-level object, find a number or a string by key. Text is a (pointer,
// length) pair; nothing here allocates.
#ifndef JSON_H
#define JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static size_t json_space(const char *s, size_t len, size_t i) {
    while (i < len && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++;
    return i;
}

// The index just past the string starting at s[i] (a '"'), or len if it is unterminated.
static size_t json_skip_string(const char *s, size_t len, size_t i) {
    for (i++; i < len; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == '"') return i + 1;
    }
    return len;
}

// The index just past the value starting at s[i] (after whitespace).
static size_t json_skip_value(const char *s, size_t len, size_t i) {
    i = json_space(s, len, i);
    if (i < len && s[i] == '"') return json_skip_string(s, len, i);
    if (i < len && (s[i] == '{' || s[i] == '[')) {
        int depth = 0;
        while (i < len) {
            char c = s[i];
            if (c == '"') { i = json_skip_string(s, len, i); continue; }
            if (c == '{' || c == '[') depth++;
            if (c == '}' || c == ']') { depth--; if (depth == 0) return i + 1; }
            i++;
        }
        return len;
    }
    while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n') i++;
    return i;
}

// Calls `member(key, key_len, value, value_len, ctx)` for each member of the object that `s`
// holds; false if `s` is not an object.
static bool json_members(const char *s, size_t len,
                         void (*member)(const char *, size_t, const char *, size_t, void *), void *ctx) {
    size_t i = json_space(s, len, 0);
    if (i >= len || s[i] != '{') return false;
    i = json_space(s, len, i + 1);
    if (i < len && s[i] == '}') return true;
    while (i < len) {
        if (s[i] != '"') return false;
        size_t key_end = json_skip_string(s, len, i);
        size_t colon = json_space(s, len, key_end);
        if (colon >= len || s[colon] != ':') return false;
        size_t start = json_space(s, len, colon + 1);
        size_t end = json_skip_value(s, len, start);
        if (end == start) return false;
        member(s + i + 1, key_end - i - 2, s + start, end - start, ctx);
        i = json_space(s, len, end);
        if (i < len && s[i] == ',') { i = json_space(s, len, i + 1); continue; }
        return i < len && s[i] == '}';
    }
    return false;
}

// Where the value of the first `"key":` anywhere in `s` starts, or NULL.
static const char *json_find(const char *s, size_t len, const char *key) {
    size_t n = strlen(key);
    for (size_t i = 0; i + n + 2 < len; i++) {
        if (s[i] == '"' && memcmp(s + i + 1, key, n) == 0 && s[i + n + 1] == '"') {
            size_t j = json_space(s, len, i + n + 2);
            if (j < len && s[j] == ':') return s + json_space(s, len, j + 1);
        }
    }
    return NULL;
}

// The unsigned number after `"key":` anywhere in `s`; false when there is none.
static bool json_find_uint(const char *s, size_t len, const char *key, unsigned long long *out) {
    const char *at = json_find(s, len, key);
    if (!at || at >= s + len || *at < '0' || *at > '9') return false;
    unsigned long long value = 0;
    for (; at < s + len && *at >= '0' && *at <= '9'; at++) value = value * 10 + (unsigned)(*at - '0');
    *out = value;
    return true;
}

#endif
