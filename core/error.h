/* error.h — the one error code type of dashi, its text and whether it is retriable.
 *
 * Every fallible public function returns a dashi_err (DASHI_OK == 0) and, where a
 * human needs the detail, writes it into a caller-provided errstr buffer of
 * errstr_size bytes (librdkafka's convention). dashi_err_retriable() tells the
 * caller whether the same call may succeed later (a Redis connection that dropped)
 * or never will (bad input): the pipeline retries the first and dead-letters the
 * second.
 */
#ifndef DASHI_ERROR_H
#define DASHI_ERROR_H

#include <stdarg.h>
#include <stddef.h>

typedef enum dashi_err {
    DASHI_OK = 0,
    DASHI_ERR_NOMEM,        /* allocation failed */
    DASHI_ERR_INVALID,      /* bad input: event, file, argument (never retriable) */
    DASHI_ERR_PARSE,        /* text that is not JSON / not Avro / not a timestamp */
    DASHI_ERR_NOT_FOUND,    /* a key, file or schema id that does not exist */
    DASHI_ERR_DUPLICATE,    /* the event was applied before: nothing to do */
    DASHI_ERR_CONFLICT,     /* a guarded write lost (fencing epoch, check failed) */
    DASHI_ERR_IO,           /* file or socket I/O failed (retriable) */
    DASHI_ERR_TRANSPORT,    /* Redis or Kafka unreachable or reset (retriable) */
    DASHI_ERR_BACKEND,      /* the back end answered with an error (not retriable) */
    DASHI_ERR_UNSUPPORTED,  /* feature or value not supported here */
    DASHI_ERR_INTERNAL,     /* a broken invariant: a bug */
    DASHI_ERR__COUNT
} dashi_err;

/* A static, never-NULL description of err. */
const char *dashi_err_str(dashi_err err);

/* Non-zero when retrying the same operation later may succeed. */
int dashi_err_retriable(dashi_err err);

/* Write a printf-style message into errstr (may be NULL or size 0) and return err:
 *   return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "field %s", f); */
dashi_err dashi_errf(dashi_err err, char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
