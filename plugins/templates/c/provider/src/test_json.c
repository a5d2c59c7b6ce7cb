// Native unit test of the JSON helpers (`make test` builds and runs it with the host's cc).
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

static int members;

static void count(const char *k, size_t kl, const char *v, size_t vl, void *ctx) {
    (void)k; (void)kl; (void)v; (void)vl; (void)ctx;
    members++;
}

int main(void) {
    const char *body = "{\"model\": \"m\", \"messages\": [{\"content\": \"a,}\\\"b\"}], \"n\": 2}";
    assert(json_members(body, strlen(body), count, NULL) && members == 3);
    assert(!json_members("[1]", 3, count, NULL));
    unsigned long long n = 0;
    const char *usage = "{\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3}}";
    assert(json_find_uint(usage, strlen(usage), "completion_tokens", &n) && n == 3);
    puts("json: ok");
    return 0;
}
