/* redis_url.c — parse the Redis URLs dashi accepts into host/port or socket path, credentials and db.
 *
 * A small hand-written splitter rather than a general URI library: the three
 * forms (redis://, unix://, redis+unix://) share one shape, scheme "://"
 * [userinfo "@"] location ["?" query], so the parser cuts at the first '?', the
 * last '@' before the location and then reads the location per scheme. Userinfo
 * follows redis-cli: "user:password", ":password" or "password" (no colon means a
 * password, for AUTH with the default user). Percent-escapes are decoded in user,
 * password and path. Error messages describe the part that is wrong but never
 * repeat the password.
 */
#include "core/state.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define URL_DEFAULT_PORT 6379
#define URL_DEFAULT_TIMEOUT_MS 10000

static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A malloc'ed, %-decoded copy of p[0..len); *bad set when an escape is malformed or decodes to NUL. */
static char *decode(const char *p, size_t len, int *bad) {
    char *s = malloc(len + 1);
    size_t n = 0;
    if (!s)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '%') {
            int hi = i + 2 < len ? hex_value(p[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(p[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                *bad = 1;
                break;
            }
            s[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            s[n++] = p[i];
        }
    }
    s[n] = '\0';
    return s;
}

/* Parse a non-negative decimal int in p[0..len) no greater than max. 0 or -1. */
static int parse_uint(const char *p, size_t len, long max, int *out) {
    long v = 0;
    if (len == 0 || len > 10)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (v > max)
        return -1;
    *out = (int)v;
    return 0;
}

void dashi_redis_url_free(dashi_redis_url *u) {
    if (!u)
        return;
    free(u->host);
    free(u->path);
    free(u->user);
    if (u->password) /* do not leave the secret in freed memory */
        memset(u->password, 0, strlen(u->password));
    free(u->password);
    memset(u, 0, sizeof *u);
}

/* Read "k=v&k=v" into u. */
static dashi_err parse_query(const char *q, size_t len, dashi_redis_url *u, char *errstr, size_t errstr_size) {
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && q[end] != '&')
            end++;
        const char *kv = q + i;
        size_t kv_len = end - i;
        const char *eq = memchr(kv, '=', kv_len);
        if (kv_len == 0) {
            i = end + 1;
            continue;
        }
        if (!eq)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "redis url: query item '%.*s' has no '='",
                              (int)kv_len, kv);
        size_t k_len = (size_t)(eq - kv);
        const char *v = eq + 1;
        size_t v_len = kv_len - k_len - 1;
        if (k_len == 2 && memcmp(kv, "db", 2) == 0) {
            if (parse_uint(v, v_len, INT_MAX, &u->db) != 0)
                return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "redis url: db '%.*s' is not a number",
                                  (int)v_len, v);
        } else if (k_len == 10 && memcmp(kv, "timeout_ms", 10) == 0) {
            if (parse_uint(v, v_len, INT_MAX, &u->timeout_ms) != 0 || u->timeout_ms == 0)
                return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                                  "redis url: timeout_ms '%.*s' is not a positive number", (int)v_len, v);
        } else {
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                              "redis url: unknown query key '%.*s' (known: db, timeout_ms)", (int)k_len, kv);
        }
        i = end + 1;
    }
    return DASHI_OK;
}

dashi_err dashi_redis_url_parse(const char *url, dashi_redis_url *out, char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    dashi_redis_url u = {.port = URL_DEFAULT_PORT, .timeout_ms = URL_DEFAULT_TIMEOUT_MS};
    int is_unix = 0, bad = 0;
    const char *rest = NULL;

    if (out)
        memset(out, 0, sizeof *out);
    if (!url || !out) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "redis url: missing");
        goto out;
    }
    if (strncmp(url, "redis://", 8) == 0) {
        rest = url + 8;
    } else if (strncmp(url, "unix://", 7) == 0) {
        rest = url + 7;
        is_unix = 1;
    } else if (strncmp(url, "redis+unix://", 13) == 0) {
        rest = url + 13;
        is_unix = 1;
    } else {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                         "redis url: unknown scheme (want redis://, unix:// or redis+unix://)");
        goto out;
    }

    /* Cut the query off, then the userinfo: the last '@' before the first '/' (a
     * socket path starts with '/', a '/' in a password must be written %2F). */
    const char *query = strchr(rest, '?');
    size_t body_len = query ? (size_t)(query - rest) : strlen(rest);
    const char *loc = rest;
    const char *first_slash = memchr(rest, '/', body_len);
    size_t search_len = first_slash ? (size_t)(first_slash - rest) : body_len;
    const char *at = NULL;
    for (size_t i = 0; i < search_len; i++)
        if (rest[i] == '@')
            at = rest + i;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        if (colon) {
            if (colon > rest && !(u.user = decode(rest, (size_t)(colon - rest), &bad)))
                goto nomem;
            if (!(u.password = decode(colon + 1, (size_t)(at - colon - 1), &bad)))
                goto nomem;
        } else if (!(u.password = decode(rest, (size_t)(at - rest), &bad))) {
            goto nomem;
        }
        if (bad) {
            err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "redis url: bad %%-escape in user or password");
            goto out;
        }
        loc = at + 1;
    }
    size_t loc_len = body_len - (size_t)(loc - rest);

    if (is_unix) {
        if (loc_len < 2 || loc[0] != '/') {
            err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                             "redis url: a unix socket URL needs an absolute path (unix:///path/to/redis.sock)");
            goto out;
        }
        if (!(u.path = decode(loc, loc_len, &bad)))
            goto nomem;
        if (bad) {
            err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "redis url: bad %%-escape in socket path");
            goto out;
        }
    } else {
        const char *slash = memchr(loc, '/', loc_len);
        size_t hp_len = slash ? (size_t)(slash - loc) : loc_len;
        const char *host = loc;
        size_t host_len = hp_len;
        const char *port = NULL;
        if (hp_len && loc[0] == '[') { /* [IPv6]:port */
            const char *close = memchr(loc, ']', hp_len);
            if (!close) {
                err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "redis url: unclosed '[' in host");
                goto out;
            }
            host = loc + 1;
            host_len = (size_t)(close - loc - 1);
            if (close + 1 < loc + hp_len) {
                if (close[1] != ':') {
                    err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "redis url: junk after ']' in host");
                    goto out;
                }
                port = close + 2;
            }
        } else {
            const char *colon = memchr(loc, ':', hp_len);
            if (colon) {
                host_len = (size_t)(colon - loc);
                port = colon + 1;
            }
        }
        if (port && parse_uint(port, (size_t)(loc + hp_len - port), 65535, &u.port) != 0) {
            err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "redis url: port '%.*s' is not 1..65535",
                             (int)(loc + hp_len - port), port);
            goto out;
        }
        if (port && u.port == 0) {
            err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "redis url: port 0 is not a port");
            goto out;
        }
        if (host_len == 0) {
            err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "redis url: no host (redis://host[:port][/db])");
            goto out;
        }
        if (!(u.host = strndup(host, host_len)))
            goto nomem;
        if (slash && slash + 1 < loc + loc_len &&
            parse_uint(slash + 1, (size_t)(loc + loc_len - slash - 1), INT_MAX, &u.db) != 0) {
            err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "redis url: db '%.*s' is not a number",
                             (int)(loc + loc_len - slash - 1), slash + 1);
            goto out;
        }
    }
    if (query && (err = parse_query(query + 1, strlen(query + 1), &u, errstr, errstr_size)) != DASHI_OK)
        goto out;
    *out = u;
    memset(&u, 0, sizeof u);
    goto out;
nomem:
    err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis url: out of memory");
out:
    dashi_redis_url_free(&u);
    return err;
}
