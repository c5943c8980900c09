/* error.c — text and retriability of dashi_err.
 *
 * A table indexed by the enum keeps the two facts about each code side by side,
 * so adding a code is one row.
 */
#include "core/error.h"

#include <stdio.h>

static const struct {
    const char *text;
    int retriable;
} err_table[DASHI_ERR__COUNT] = {
    [DASHI_OK]              = {"success", 0},
    [DASHI_ERR_NOMEM]       = {"out of memory", 1},
    [DASHI_ERR_INVALID]     = {"invalid input", 0},
    [DASHI_ERR_PARSE]       = {"cannot parse", 0},
    [DASHI_ERR_NOT_FOUND]   = {"not found", 0},
    [DASHI_ERR_DUPLICATE]   = {"already applied", 0},
    [DASHI_ERR_CONFLICT]    = {"conflicting write (fenced or check failed)", 0},
    [DASHI_ERR_IO]          = {"I/O error", 1},
    [DASHI_ERR_TRANSPORT]   = {"transport error (connection lost or unreachable)", 1},
    [DASHI_ERR_BACKEND]     = {"back end returned an error", 0},
    [DASHI_ERR_UNSUPPORTED] = {"not supported", 0},
    [DASHI_ERR_INTERNAL]    = {"internal error", 0},
};

const char *dashi_err_str(dashi_err err) {
    if ((unsigned)err >= DASHI_ERR__COUNT)
        return "unknown error";
    return err_table[err].text;
}

int dashi_err_retriable(dashi_err err) {
    if ((unsigned)err >= DASHI_ERR__COUNT)
        return 0;
    return err_table[err].retriable;
}

dashi_err dashi_errf(dashi_err err, char *errstr, size_t errstr_size, const char *fmt, ...) {
    if (errstr && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}
