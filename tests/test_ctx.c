/* test_ctx.c — deterministic output ids: "<prefix>-" and 16 hex digits of SHA-256 over the NUL-separated parts.
 *
 * The id is computed here independently (OpenSSL's one-shot digest, printf for the
 * text) and compared, for every buffer size from 0 up, with what the handlers get,
 * so the text and its truncation to a short buffer are what snprintf wrote before.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/ctx.h"

Test(ctx, make_id_is_prefix_and_digest_hex_cut_like_snprintf) {
    const char *parts[] = {"OrderPaid", NULL, "ord-1", ""};
    unsigned char msg[64], md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    size_t len = 0;
    for (size_t i = 0; i < 4; i++) { /* each part and its NUL; NULL counts as "" */
        const char *p = parts[i] ? parts[i] : "";
        memcpy(msg + len, p, strlen(p) + 1);
        len += strlen(p) + 1;
    }
    cr_assert(EVP_Digest(msg, len, md, &md_len, EVP_sha256(), NULL));
    char full[64];
    int n = snprintf(full, sizeof full, "cm-");
    for (int i = 0; i < 8; i++)
        n += snprintf(full + n, sizeof full - (size_t)n, "%02x", md[i]);
    char id[64];
    cr_assert_str_eq(dashi_ctx_make_id(id, sizeof id, "cm", parts, 4), full);
    for (size_t size = 1; size < sizeof id; size++) {
        /* snprintf "%s-" cut to size - 1 bytes, then whole "%02x" pairs while they fit */
        char want[64], got[64];
        size_t keep = size - 1;
        if (keep >= 3) {
            size_t pairs = (keep - 3) / 2;
            keep = 3 + 2 * (pairs < 8 ? pairs : 8);
        }
        memcpy(want, full, keep);
        want[keep] = '\0';
        memset(got, 'X', sizeof got);
        dashi_ctx_make_id(got, size, "cm", parts, 4);
        cr_expect_str_eq(got, want, "buffer of %zu bytes", size);
    }
    memset(id, 'X', sizeof id);
    dashi_ctx_make_id(id, 0, "cm", parts, 4);
    cr_expect_eq(id[0], 'X', "a buffer of 0 bytes is not written");
}
