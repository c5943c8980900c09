/* ctx.h — what a rules handler gets for one step: the view, the rules in force, the time, the cause, the outputs.
 *
 * A step is one input event or one timer. Handlers (identity.c, commission.c,
 * campaign.c) are pure functions of (ctx, event): they read and edit state through
 * ctx->view and append outputs with dashi_ctx_emit(). They never read a clock:
 * ctx->now is the event time (or the timer's due time).
 */
#ifndef DASHI_CTX_H
#define DASHI_CTX_H

#include <stddef.h>

#include "core/event.h"
#include "core/rules.h"
#include "core/time.h"
#include "core/view.h"

typedef struct dashi_keyring dashi_keyring; /* core/hashing.h */

typedef struct dashi_ctx {
    dashi_view *view;               /* borrowed */
    const dashi_rules *rules;       /* borrowed */
    const dashi_ruleset *set;       /* rule set in force at now (V1) */
    const dashi_keyring *keys;      /* borrowed: HMAC keys for identity values (S7) */
    dashi_time now;                 /* event time or timer due time */
    const char *cause;              /* input event_id or timer id: outputs' caused_by */
    const dashi_event *event;       /* the input event of this step; NULL for a timer */
    dashi_event *outputs;           /* outputs of this step, in order */
    size_t n_outputs, cap_outputs;
    char error[256];                /* why a handler refused the event (dashi_ctx_fail) */
} dashi_ctx;

/* Refuse the step's input as bad input (or report another error): records the
 * message for the caller and returns err, so a handler writes
 *   return dashi_ctx_fail(ctx, DASHI_ERR_INVALID, "refund %lld exceeds ...", ...);
 * The engine then drops the whole step: nothing of it is written or emitted. */
dashi_err dashi_ctx_fail(dashi_ctx *ctx, dashi_err err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Append an output. Takes ev's contents (ev is left zeroed; its type is kept). */
void dashi_ctx_emit(dashi_ctx *ctx, dashi_event *ev);

/* Deterministic id: "<prefix>-" + 16 hex digits of SHA-256 over the parts joined
 * by NUL bytes. buf must hold strlen(prefix) + 18 bytes. Returns buf. */
char *dashi_ctx_make_id(char *buf, size_t size, const char *prefix, const char *const *parts, size_t n_parts);

#endif
