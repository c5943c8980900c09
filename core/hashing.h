/* hashing.h — identity values normalized and kept only as keyed hashes (RULES S7).
 *
 * A phone, email, ID document or device id never leaves the event that carried it
 * in clear: it is normalized (phone to E.164 with +86 default, email lower-cased
 * and trimmed with gmail dots and +tags removed, ID document upper-cased without
 * spaces) and replaced by HMAC-SHA-256 under a secret key. The key ring holds
 * versioned keys so the secret can be rotated; each stored hash carries the
 * version that made it. Values that arrive already hashed are used as they are.
 */
#ifndef DASHI_HASHING_H
#define DASHI_HASHING_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "core/event.h"

typedef struct dashi_keyring dashi_keyring;

#define DASHI_HASH_STRLEN 80 /* enough for "v<version>:<64 hex>" and its NUL */

/* Key ring from a reference: "env:NAME" (the variable holds the secret),
 * "file:/path" (the file holds it; refused when group/other may read it), or
 * NULL/"dev" for the fixed development key (replay and tests; never for run).
 * The current version is 1 unless the reference gives "...#N". A comma-separated list
 * of references loads several versions (a key rotation: "env:K2#2,env:K1#1"); the
 * highest is current. NULL + errstr on failure. */
dashi_keyring *dashi_keyring_load(const char *ref, char *errstr, size_t errstr_size);
/* Add an older (or newer) key version; the highest version hashes new values. */
dashi_err dashi_keyring_add(dashi_keyring *kr, int version, const void *secret, size_t len,
                            char *errstr, size_t errstr_size);
void dashi_keyring_destroy(dashi_keyring *kr); /* NULL-safe */

/* Normalize value of the given dashi_identity_kind into out. DASHI_ERR_INVALID for
 * values that normalize to nothing (empty, only spaces). */
dashi_err dashi_identity_normalize(int kind, const char *value, char *out, size_t out_size,
                                   char *errstr, size_t errstr_size);

/* The stored form of an identity value: "v<version>:<hex HMAC>" of "KIND:normalized"
 * under the current key, or, when hashed is true, the value as given (trimmed). */
dashi_err dashi_identity_hash(const dashi_keyring *kr, int kind, const char *value, bool hashed,
                              char *out, size_t out_size, char *errstr, size_t errstr_size);

/* Key versions of the ring, current (highest) first: writes up to max of them into
 * versions (may be NULL when max is 0) and returns how many the ring holds. */
size_t dashi_keyring_versions(const dashi_keyring *kr, int *versions, size_t max);

/* dashi_identity_hash of a clear value under the given key version instead of the
 * current one, so a value stored before a rotation is still found ("v<version>:<hex>").
 * DASHI_ERR_NOT_FOUND when the ring has no such version. */
dashi_err dashi_identity_hash_version(const dashi_keyring *kr, int version, int kind, const char *value,
                                      char *out, size_t out_size, char *errstr, size_t errstr_size);

#endif
