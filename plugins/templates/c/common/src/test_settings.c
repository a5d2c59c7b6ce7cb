// Native unit test of the settings check (`make test` builds and runs it with the host's cc).
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "settings.h"

int main(void) {
    const char *ok[] = {"", "{}", " { } "};
    const char *bad[] = {"{\"a\":1}", "[]", "{", "}{"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) assert(settings_empty(ok[i], strlen(ok[i])));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert(!settings_empty(bad[i], strlen(bad[i])));
    puts("settings: ok");
    return 0;
}
