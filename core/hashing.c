/* hashing.c — normalization of identity values and their keyed hashes (HMAC-SHA-256, versioned keys).
 *
 * Normalization (RULES S7), applied after two folds common to every kind: the
 * full-width ASCII forms U+FF01..U+FF5E become their ASCII twins (a phone typed on a
 * Chinese IME as "１３８…" is the same phone) and the ideographic space U+3000 is a
 * space; any other non-ASCII byte is kept as it is (no Unicode case folding).
 *   PHONE  E.164: separators " -.()/" dropped; "+CC…" or "00CC…" is international,
 *          a trunk 0 after +86 is dropped; without a prefix a 13-digit "861…" is +86,
 *          a leading 0 is a Chinese trunk prefix, everything else gets +86. Only
 *          digits may remain and 5..15 of them (E.164 allows 15).
 *   EMAIL  trimmed, ASCII lower-cased, split at the last '@' (both parts non-empty,
 *          no whitespace inside); for gmail.com and googlemail.com (same mailboxes,
 *          written gmail.com) the local part loses its dots and its "+tag".
 *   ID_DOC every whitespace removed, ASCII upper-cased.
 *   DEVICE trimmed only (device ids are case-sensitive).
 * A value that normalizes to nothing is DASHI_ERR_INVALID. Error messages never
 * quote the value: they may end up in a log (S7).
 *
 * Hash: HMAC-SHA-256 under the key of a version over "KIND:normalized", written
 * "v<version>:<64 lower-case hex>". The ring keeps every version it was given; the
 * highest hashes new values and dashi_identity_hash_version() reaches the older ones
 * so values stored before a rotation are still found. Secrets are wiped on destroy.
 * Key references: "dev" (fixed public constant, for replay and tests), "env:NAME",
 * "file:/path" (refused unless a regular file without group/other permissions),
 * each with an optional "#N" for the version (default 1); a secret must be at least
 * 16 bytes (trailing CR/LF are dropped). A comma-separated list loads several
 * versions for a rotation ("env:KEY_2022#2,env:KEY_2021#1": the highest is current).
 *
 * Speed (one HMAC per identity value of every event): the ring fetches OpenSSL's
 * HMAC once and keeps, per key version, a MAC context keyed when the version is
 * added; each value re-initializes it without a key (OpenSSL then reuses the key's
 * prepared pads), so a hash costs two SHA-256 blocks and no fetch or allocation
 * (EVP_Q_mac fetched, allocated and keyed on every value: three times the work).
 * Hex is written from a table. The contexts make a ring single-threaded: one thread
 * hashes with it at a time.
 */
#include "core/hashing.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define DEV_SECRET "dashi-development-key-NOT-SECRET-2022"
#define MIN_SECRET_LEN 16
#define MAX_SECRET_LEN 4096
#define PHONE_MIN_DIGITS 5
#define PHONE_MAX_DIGITS 15

typedef struct key_version {
    int version;
    unsigned char *secret; /* owned, wiped on destroy */
    size_t len;
    EVP_MAC_CTX *mac;      /* owned: HMAC-SHA-256 keyed with secret, re-initialized per value */
} key_version;

struct dashi_keyring {
    key_version *keys; /* sorted by version, highest first */
    size_t n;
    EVP_MAC *hmac;     /* owned: OpenSSL's HMAC, fetched with the first key */
};

static const char *const kind_names[DASHI_ID__COUNT] = {"PHONE", "EMAIL", "ID_DOC", "DEVICE"};

/* ---------------------------------------------------------------- key ring */

static dashi_keyring *keyring_new(void) {
    return calloc(1, sizeof(dashi_keyring));
}

dashi_err dashi_keyring_add(dashi_keyring *kr, int version, const void *secret, size_t len, char *errstr,
                            size_t errstr_size) {
    dashi_err err = DASHI_OK;
    unsigned char *copy = NULL;
    key_version *grown = NULL;
    EVP_MAC_CTX *mac = NULL;
    size_t at = 0;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};

    if (!kr || !secret || len == 0) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "key ring: empty secret");
        goto out;
    }
    if (version < 1) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "key ring: version %d: must be >= 1", version);
        goto out;
    }
    for (size_t i = 0; i < kr->n; i++) {
        if (kr->keys[i].version == version) {
            err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "key ring: version %d given twice", version);
            goto out;
        }
        if (kr->keys[i].version > version)
            at = i + 1;
    }
    if (!kr->hmac && !(kr->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL))) {
        err = dashi_errf(DASHI_ERR_INTERNAL, errstr, errstr_size, "key ring: OpenSSL has no HMAC");
        goto out;
    }
    if (!(mac = EVP_MAC_CTX_new(kr->hmac)) || !EVP_MAC_init(mac, secret, len, params)) {
        err = dashi_errf(DASHI_ERR_INTERNAL, errstr, errstr_size, "key ring: cannot key HMAC-SHA-256");
        goto out;
    }
    copy = malloc(len);
    grown = realloc(kr->keys, (kr->n + 1) * sizeof(*kr->keys));
    if (!copy || !grown) {
        if (grown)
            kr->keys = grown;
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "key ring: out of memory");
        goto out;
    }
    kr->keys = grown;
    memcpy(copy, secret, len);
    memmove(&kr->keys[at + 1], &kr->keys[at], (kr->n - at) * sizeof(*kr->keys));
    kr->keys[at] = (key_version){.version = version, .secret = copy, .len = len, .mac = mac};
    kr->n++;
    copy = NULL;
    mac = NULL;
out:
    free(copy);
    EVP_MAC_CTX_free(mac);
    return err;
}

void dashi_keyring_destroy(dashi_keyring *kr) {
    if (!kr)
        return;
    for (size_t i = 0; i < kr->n; i++) {
        OPENSSL_cleanse(kr->keys[i].secret, kr->keys[i].len);
        free(kr->keys[i].secret);
        EVP_MAC_CTX_free(kr->keys[i].mac);
    }
    EVP_MAC_free(kr->hmac);
    free(kr->keys);
    free(kr);
}

size_t dashi_keyring_versions(const dashi_keyring *kr, int *versions, size_t max) {
    if (!kr)
        return 0;
    for (size_t i = 0; i < kr->n && i < max; i++)
        versions[i] = kr->keys[i].version;
    return kr->n;
}

/* Split "body#N" into the body length and version N (1 when there is no "#digits" suffix). */
static dashi_err ref_version(const char *ref, size_t *body_len, int *version, char *errstr, size_t errstr_size) {
    const char *hash = strrchr(ref, '#');
    *body_len = strlen(ref);
    *version = 1;
    if (!hash || hash[1] == '\0' || strspn(hash + 1, "0123456789") != strlen(hash + 1))
        return DASHI_OK;
    errno = 0;
    long v = strtol(hash + 1, NULL, 10);
    if (errno || v < 1 || v > INT_MAX)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "key reference: version '%s' out of range", hash + 1);
    *body_len = (size_t)(hash - ref);
    *version = (int)v;
    return DASHI_OK;
}

/* Read the secret of a key file into buf (refusing files others may read). */
static dashi_err read_key_file(const char *path, unsigned char *buf, size_t size, size_t *len, char *errstr,
                               size_t errstr_size) {
    dashi_err err = DASHI_OK;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    size_t got = 0;

    if (fd < 0) {
        err = dashi_errf(DASHI_ERR_NOT_FOUND, errstr, errstr_size, "key file %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "key file %s: not a regular file", path);
        goto out;
    }
    if (st.st_mode & 077) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                         "key file %s: mode %03o lets group or others read it; chmod 600 it", path,
                         (unsigned)(st.st_mode & 0777));
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = dashi_errf(DASHI_ERR_IO, errstr, errstr_size, "key file %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got == size) {
            err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "key file %s: longer than %zu bytes", path,
                             size - 1);
            goto out;
        }
    }
    *len = got;
out:
    if (fd >= 0)
        close(fd);
    return err;
}

/* Load one reference ("dev", "env:NAME", "file:/path", each with an optional "#N") into kr. */
static dashi_err keyring_load_one(dashi_keyring *kr, const char *ref, char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    unsigned char secret[MAX_SECRET_LEN + 1];
    size_t body_len = 0, len = 0;
    int version = 1;
    char *body = NULL;

    if ((err = ref_version(ref, &body_len, &version, errstr, errstr_size)) != DASHI_OK)
        goto out;
    if (!(body = strndup(ref, body_len))) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "key ring: out of memory");
        goto out;
    }
    if (strcmp(body, "dev") == 0) {
        len = strlen(DEV_SECRET);
        memcpy(secret, DEV_SECRET, len);
    } else if (strncmp(body, "env:", 4) == 0) {
        const char *val = getenv(body + 4);
        if (!val || !*val) {
            err = dashi_errf(DASHI_ERR_NOT_FOUND, errstr, errstr_size, "key reference %s: variable not set or empty",
                             body);
            goto out;
        }
        len = strlen(val);
        if (len > MAX_SECRET_LEN) {
            err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "key reference %s: longer than %d bytes", body,
                             MAX_SECRET_LEN);
            goto out;
        }
        memcpy(secret, val, len);
    } else if (strncmp(body, "file:", 5) == 0) {
        if ((err = read_key_file(body + 5, secret, sizeof secret, &len, errstr, errstr_size)) != DASHI_OK)
            goto out;
    } else {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                         "key reference '%s': expected dev, env:NAME or file:/path (optionally #version)", body);
        goto out;
    }
    while (len > 0 && (secret[len - 1] == '\n' || secret[len - 1] == '\r'))
        len--;
    if (len < MIN_SECRET_LEN) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "key reference %s: secret shorter than %d bytes",
                         body, MIN_SECRET_LEN);
        goto out;
    }
    err = dashi_keyring_add(kr, version, secret, len, errstr, errstr_size);
out:
    OPENSSL_cleanse(secret, sizeof secret);
    free(body);
    return err;
}

dashi_keyring *dashi_keyring_load(const char *ref, char *errstr, size_t errstr_size) {
    dashi_keyring *kr = keyring_new(), *result = NULL;
    char *list = strdup(ref ? ref : "dev"), *save = NULL;

    if (!kr || !list) {
        dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "key ring: out of memory");
        goto out;
    }
    /* "ref[,ref...]": a rotation lists the new key and the older ones, e.g. "env:K2#2,env:K1#1" */
    for (char *part = strtok_r(list, ",", &save); part; part = strtok_r(NULL, ",", &save))
        if (keyring_load_one(kr, part, errstr, errstr_size) != DASHI_OK)
            goto out;
    if (kr->n == 0) {
        dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "key reference: empty");
        goto out;
    }
    result = kr;
    kr = NULL;
out:
    dashi_keyring_destroy(kr);
    free(list);
    return result;
}

/* ---------------------------------------------------------------- normalization */

/* Copy value into buf folding full-width ASCII (U+FF01..U+FF5E) and U+3000. */
static dashi_err fold_width(const char *value, char *buf, size_t size) {
    const unsigned char *p = (const unsigned char *)value;
    size_t n = 0;
    while (*p) {
        unsigned cp = 0;
        size_t adv = 1;
        if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) {
            cp = ' ';
            adv = 3;
        } else if (p[0] == 0xEF && (p[1] == 0xBC || p[1] == 0xBD) && p[2] >= 0x80 && p[2] <= 0xBF) {
            unsigned u = 0xF000u | ((unsigned)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
            if (u >= 0xFF01 && u <= 0xFF5E) {
                cp = u - 0xFF01 + 0x21;
                adv = 3;
            }
        }
        if (n + 1 >= size)
            return DASHI_ERR_INVALID;
        buf[n++] = adv == 3 ? (char)cp : (char)*p;
        p += adv;
    }
    buf[n] = '\0';
    return DASHI_OK;
}

/* Trim ASCII whitespace at both ends, in place; returns the start. */
static char *trim(char *s) {
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

static dashi_err normalize_phone(char *s, char *out, size_t out_size, char *errstr, size_t errstr_size) {
    char digits[64];
    size_t nd = 0;
    bool intl = false;
    const char *d;

    for (char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (isspace(c) || strchr("-.()/", c))
            continue;
        if (c == '+' && nd == 0 && !intl) {
            intl = true;
            continue;
        }
        if (!isdigit(c))
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "PHONE: not a phone number (non-digit character)");
        if (nd + 1 >= sizeof digits)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "PHONE: too many digits");
        digits[nd++] = (char)c;
    }
    digits[nd] = '\0';
    d = digits;
    if (!intl && strncmp(d, "00", 2) == 0) {
        intl = true;
        d += 2;
    }
    char e164[72];
    if (intl) {
        if (strncmp(d, "860", 3) == 0)
            snprintf(e164, sizeof e164, "+86%s", d + 3);
        else
            snprintf(e164, sizeof e164, "+%s", d);
    } else if (strlen(d) == 13 && strncmp(d, "861", 3) == 0) {
        snprintf(e164, sizeof e164, "+%s", d);
    } else if (d[0] == '0') {
        snprintf(e164, sizeof e164, "+86%s", d + 1);
    } else {
        snprintf(e164, sizeof e164, "+86%s", d);
    }
    size_t n = strlen(e164) - 1;
    if (*d == '\0' || n < PHONE_MIN_DIGITS || n > PHONE_MAX_DIGITS)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "PHONE: %zu digits, E.164 allows %d..%d",
                          *d ? n : 0, PHONE_MIN_DIGITS, PHONE_MAX_DIGITS);
    if (strlen(e164) + 1 > out_size)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "PHONE: output buffer too small");
    strcpy(out, e164);
    return DASHI_OK;
}

static dashi_err normalize_email(char *s, char *out, size_t out_size, char *errstr, size_t errstr_size) {
    char *at = strrchr(s, '@');
    char *domain;
    size_t n = 0, dlen;

    for (char *p = s; *p; p++) {
        if (isspace((unsigned char)*p))
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "EMAIL: whitespace inside the address");
        *p = (char)tolower((unsigned char)*p);
    }
    if (!at || at == s || at[1] == '\0')
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "EMAIL: expected local@domain");
    *at = '\0';
    domain = at + 1;
    dlen = strlen(domain);
    while (dlen > 0 && domain[dlen - 1] == '.')
        domain[--dlen] = '\0';
    if (dlen == 0)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "EMAIL: empty domain");
    bool gmail = strcmp(domain, "gmail.com") == 0 || strcmp(domain, "googlemail.com") == 0;
    if (gmail)
        domain = "gmail.com";
    for (const char *p = s; *p; p++) {
        if (gmail && *p == '+')
            break;
        if (gmail && *p == '.')
            continue;
        if (n + 1 >= out_size)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "EMAIL: too long");
        out[n++] = *p;
    }
    if (n == 0)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "EMAIL: empty local part");
    if (n + 1 + strlen(domain) + 1 > out_size)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "EMAIL: too long");
    out[n++] = '@';
    strcpy(out + n, domain);
    return DASHI_OK;
}

static dashi_err normalize_id_doc(const char *s, char *out, size_t out_size, char *errstr, size_t errstr_size) {
    size_t n = 0;
    for (const char *p = s; *p; p++) {
        if (isspace((unsigned char)*p))
            continue;
        if (n + 1 >= out_size)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "ID_DOC: too long");
        out[n++] = (char)toupper((unsigned char)*p);
    }
    out[n] = '\0';
    return DASHI_OK;
}

dashi_err dashi_identity_normalize(int kind, const char *value, char *out, size_t out_size, char *errstr,
                                   size_t errstr_size) {
    dashi_err err = DASHI_OK;
    char *buf = NULL, *s;
    size_t size;

    if (kind < 0 || kind >= DASHI_ID__COUNT) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "identity kind %d unknown", kind);
        goto out;
    }
    if (!value || !out || out_size == 0) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: no value", kind_names[kind]);
        goto out;
    }
    size = strlen(value) + 1;
    buf = malloc(size);
    if (!buf) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    if (fold_width(value, buf, size) != DASHI_OK) {
        err = dashi_errf(DASHI_ERR_INTERNAL, errstr, errstr_size, "%s: fold overflow", kind_names[kind]);
        goto out;
    }
    s = trim(buf);
    if (*s == '\0') {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: empty value", kind_names[kind]);
        goto out;
    }
    switch (kind) {
    case DASHI_ID_PHONE:
        err = normalize_phone(s, out, out_size, errstr, errstr_size);
        break;
    case DASHI_ID_EMAIL:
        err = normalize_email(s, out, out_size, errstr, errstr_size);
        break;
    case DASHI_ID_ID_DOC:
        err = normalize_id_doc(s, out, out_size, errstr, errstr_size);
        break;
    default:
        if (strlen(s) + 1 > out_size)
            err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "DEVICE: too long");
        else
            strcpy(out, s);
        break;
    }
out:
    if (buf)
        OPENSSL_cleanse(buf, size);
    free(buf);
    return err;
}

/* ---------------------------------------------------------------- hashing */

static const key_version *key_of(const dashi_keyring *kr, int version) {
    for (size_t i = 0; kr && i < kr->n; i++)
        if (kr->keys[i].version == version)
            return &kr->keys[i];
    return NULL;
}

/* Write "v<version>:" into out (what snprintf "v%d:" writes, for a version >= 1);
 * its length, or -1 when it does not fit. */
static int version_prefix(int version, char *out, size_t out_size) {
    char digits[16];
    int n = 0, w = 0;
    do {
        digits[n++] = (char)('0' + version % 10);
        version /= 10;
    } while (version > 0);
    if ((size_t)n + 3 > out_size)
        return -1;
    out[w++] = 'v';
    while (n > 0)
        out[w++] = digits[--n];
    out[w++] = ':';
    out[w] = '\0';
    return w;
}

static dashi_err hmac_value(const key_version *key, int kind, const char *value, char *out, size_t out_size,
                            char *errstr, size_t errstr_size) {
    static const char hex[] = "0123456789abcdef";
    dashi_err err = DASHI_OK;
    size_t norm_size = strlen(value) + 64, msg_size = norm_size + 16, mac_len = 0, msg_len, kind_len;
    char small[256], *msg = msg_size <= sizeof small ? small : malloc(msg_size);
    unsigned char mac[EVP_MAX_MD_SIZE];
    int w;

    if (!msg) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    kind_len = strlen(kind_names[kind]);
    memcpy(msg, kind_names[kind], kind_len);
    msg[kind_len] = ':';
    err = dashi_identity_normalize(kind, value, msg + kind_len + 1, norm_size, errstr, errstr_size);
    if (err != DASHI_OK)
        goto out;
    msg_len = strlen(msg);
    /* a NULL key re-initializes the context with the key it was given in dashi_keyring_add */
    if (!EVP_MAC_init(key->mac, NULL, 0, NULL) || !EVP_MAC_update(key->mac, (const unsigned char *)msg, msg_len) ||
        !EVP_MAC_final(key->mac, mac, &mac_len, sizeof mac) || mac_len != 32) {
        err = dashi_errf(DASHI_ERR_INTERNAL, errstr, errstr_size, "HMAC-SHA-256 failed");
        goto out;
    }
    w = version_prefix(key->version, out, out_size);
    if (w < 0 || (size_t)w + 64 + 1 > out_size) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "hash output buffer too small");
        goto out;
    }
    for (size_t i = 0; i < mac_len; i++) {
        out[w + 2 * i] = hex[mac[i] >> 4];
        out[w + 2 * i + 1] = hex[mac[i] & 15];
    }
    out[w + 64] = '\0';
out:
    if (msg)
        OPENSSL_cleanse(msg, msg_size);
    if (msg != small)
        free(msg);
    OPENSSL_cleanse(mac, sizeof mac);
    return err;
}

dashi_err dashi_identity_hash_version(const dashi_keyring *kr, int version, int kind, const char *value, char *out,
                                      size_t out_size, char *errstr, size_t errstr_size) {
    const key_version *key = key_of(kr, version);
    if (!key)
        return dashi_errf(DASHI_ERR_NOT_FOUND, errstr, errstr_size, "key ring has no version %d", version);
    if (kind < 0 || kind >= DASHI_ID__COUNT)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "identity kind %d unknown", kind);
    return hmac_value(key, kind, value, out, out_size, errstr, errstr_size);
}

dashi_err dashi_identity_hash(const dashi_keyring *kr, int kind, const char *value, bool hashed, char *out,
                              size_t out_size, char *errstr, size_t errstr_size) {
    if (hashed) {
        const char *s = value ? value : "";
        size_t len;
        while (isspace((unsigned char)*s))
            s++;
        len = strlen(s);
        while (len > 0 && isspace((unsigned char)s[len - 1]))
            len--;
        if (len == 0)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "hashed identity: empty value");
        if (len + 1 > out_size)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "hashed identity: longer than %zu bytes",
                              out_size - 1);
        memcpy(out, s, len);
        out[len] = '\0';
        return DASHI_OK;
    }
    if (!kr || kr->n == 0)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "no key to hash identity values with");
    return dashi_identity_hash_version(kr, kr->keys[0].version, kind, value, out, out_size, errstr, errstr_size);
}
