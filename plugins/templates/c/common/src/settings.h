// Settings check shared by the exports: this plugin takes none, so only an empty JSON object
// (or nothing) is accepted; anything else is refused, so a typo in the config fails
// `freeway check` instead of being ignored.
#ifndef SETTINGS_H
#define SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

static inline bool settings_empty(const char *text, size_t len) {
    size_t i = 0, seen = 0;
    char want[2] = {'{', '}'};
    for (; i < len; i++) {
        char c = text[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            continue;
        }
        if (seen >= 2 || c != want[seen]) {
            return false;
        }
        seen++;
    }
    return seen == 0 || seen == 2;
}

#endif
