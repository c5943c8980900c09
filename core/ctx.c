/* ctx.c — output collection and deterministic ids for rules handlers.
 *
 * Output ids must be the same on every replay of the same inputs (EVENTS.md), so
 * they are digests of what caused them, never counters or clocks: SHA-256 over the
 * parts separated by NUL bytes, 64 bits of it in hex — collisions need ~4e9 outputs
 * of one prefix before they become likely. The SHA-256 implementation is fetched
 * from OpenSSL once per process (pthread_once), not implicitly on every digest.
 */
#include "core/ctx.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

void dashi_ctx_emit(dashi_ctx *ctx, dashi_event *ev) {
    if (ctx->n_outputs == ctx->cap_outputs) {
        size_t cap = ctx->cap_outputs ? ctx->cap_outputs * 2 : 8;
        dashi_event *o = realloc(ctx->outputs, cap * sizeof(*o));
        if (!o)
            abort(); /* out of memory in the middle of a step: nothing sane to do */
        ctx->outputs = o;
        ctx->cap_outputs = cap;
    }
    ctx->outputs[ctx->n_outputs++] = *ev;
    dashi_event_type type = ev->type;
    memset(ev, 0, sizeof(*ev));
    ev->type = type;
}

static EVP_MD *sha256;             /* fetched once: an implicit fetch per digest costs more than the hash */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void) {
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); /* kept for the process's life */
}

char *dashi_ctx_make_id(char *buf, size_t size, const char *prefix, const char *const *parts, size_t n_parts) {
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    pthread_once(&sha256_once, sha256_fetch);
    if (!h)
        abort();
    EVP_DigestInit_ex(h, sha256 ? sha256 : EVP_sha256(), NULL);
    for (size_t i = 0; i < n_parts; i++) {
        const char *p = parts[i] ? parts[i] : "";
        EVP_DigestUpdate(h, p, strlen(p) + 1); /* include the NUL as separator */
    }
    EVP_DigestFinal_ex(h, md, &md_len);
    EVP_MD_CTX_free(h);
    size_t plen = strlen(prefix);
    int n = 0;
    if (size > 0) { /* what snprintf "%s-" writes: cut to the buffer */
        size_t w = plen + 1 < size ? plen + 1 : size - 1;
        memcpy(buf, prefix, w < plen ? w : plen);
        if (w > plen)
            buf[plen] = '-';
        buf[w] = '\0';
        n = (int)(plen + 1);
    }
    for (int i = 0; i < 8 && (size_t)n + 2 < size; i++) { /* what "%02x" per byte writes */
        buf[n++] = hex[md[i] >> 4];
        buf[n++] = hex[md[i] & 15];
        buf[n] = '\0';
    }
    return buf;
}

dashi_err dashi_ctx_fail(dashi_ctx *ctx, dashi_err err, const char *fmt, ...) {
    if (ctx->error[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->error, sizeof(ctx->error), fmt, ap);
        va_end(ap);
    }
    return err;
}
