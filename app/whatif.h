/* whatif.h — what-if (RULES V2): the same events replayed under two rule sets, and the difference per rule version, tier, outcome, reason, campaign and ambassador.
 *
 * A rate change or a new campaign is a change of the rules file (V2); before it
 * goes live, `dashi whatif` shows what it would have changed. The input events are
 * read and sorted once (app/replay.c) and replayed twice, each time into a fresh
 * in-memory state with its own engine: side A under the first rules file, side B
 * under the second. Each side's outputs are folded as they are emitted: every
 * commission counts once, at its latest event (its current amount, outcome, tier,
 * rule version and reason codes), and campaign events (PROGRESS left out) count
 * per campaign id, kind, ladder and unit with their reward change (SETTLED: the
 * final reward), as `dashi summary` counts them. The report then holds, per table,
 * one row per key with the count and the sum of each side; the difference is
 * always B − A. Money is integer fen (a campaign row in yunqi when its unit is
 * YUNQI); it is shown as yuan with two decimals. Outputs carry no identity value,
 * and neither does the report: keys are rule versions, tiers, codes, campaign ids
 * and ambassador uids.
 */
#ifndef DASHI_WHATIF_H
#define DASHI_WHATIF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "app/replay.h"
#include "core/error.h"
#include "core/event.h"
#include "core/hashing.h"
#include "core/rules.h"
#include "core/time.h"

#define DASHI_WHATIF_SIDES 2 /* 0: A (first rules file), 1: B (second) */

typedef enum dashi_whatif_table {
    DASHI_WHATIF_RULE,       /* commissions by rule_version of their latest event: count, amount */
    DASHI_WHATIF_TIER,       /* commissions by tier ("(none)" when the outcome has no tier): count, amount */
    DASHI_WHATIF_OUTCOME,    /* commissions by latest event (PENDING, CONFIRMED, ...): count, amount */
    DASHI_WHATIF_REASON,     /* commissions whose latest event carries the reason code: count, base amount */
    DASHI_WHATIF_CAMPAIGN,   /* campaign events "<campaign_id> <KIND>[ <ladder>] [<UNIT>]": count, reward */
    DASHI_WHATIF_AMBASSADOR, /* commissions by ambassador_uid (none left out): count, amount */
    DASHI_WHATIF__TABLES
} dashi_whatif_table;

typedef struct dashi_whatif_row {
    char *key;                          /* owned by the report */
    int64_t count[DASHI_WHATIF_SIDES];  /* per side */
    int64_t sum[DASHI_WHATIF_SIDES];    /* per side: fen (yunqi for a campaign row of unit YUNQI) */
} dashi_whatif_row;

typedef struct dashi_whatif_side {
    const char *label;        /* borrowed: what the side is called (the rules file's path) */
    const char *rules_name;   /* borrowed from the rules given to run */
    int64_t revision;
    dashi_replay_stats stats; /* events applied, duplicates, refused by the engine, seconds */
    size_t outputs;           /* output events emitted */
    size_t commissions;       /* distinct commission ids */
    int64_t commission_total; /* fen: sum of the commissions' amounts at their latest event */
    int64_t bonus_total;      /* yunqi: sum of bonus_amount (K1) at the commissions' latest event */
} dashi_whatif_side;

typedef struct dashi_whatif dashi_whatif;

/* An empty report. NULL on out of memory (errstr says so). */
dashi_whatif *dashi_whatif_new(char *errstr, size_t errstr_size);
void dashi_whatif_destroy(dashi_whatif *w); /* NULL-safe */

/* Replay the sorted events l (dashi_replay_sort; borrowed, not changed) once per
 * side, each into a new in-memory state under rules[side] (borrowed), keys shared
 * (borrowed), then advance each to until (DASHI_TIME_NONE: no advance) so timers up
 * to it fire; labels[side] (borrowed, kept) name the sides. Events an engine
 * refuses go to reject (may be NULL) with the side's label as source. Then the
 * report is finished (dashi_whatif_finish). Call once on a new report. */
dashi_err dashi_whatif_run(dashi_whatif *w, const dashi_event_list *l, const dashi_rules *const rules[2],
                           const char *const labels[2], const dashi_keyring *keys, dashi_time until,
                           dashi_reject_fn reject, void *reject_opaque, char *errstr, size_t errstr_size);

/* The building blocks of run, for callers with outputs of their own: fold one
 * output event of side (0 or 1; out borrowed), then, after the last, finish:
 * count each commission at its latest event and sort the rows. Input events are
 * ignored. DASHI_ERR_NOMEM, or DASHI_ERR_INVALID for a bad side or an add after
 * finish. */
dashi_err dashi_whatif_add(dashi_whatif *w, int side, const dashi_event *out);
dashi_err dashi_whatif_finish(dashi_whatif *w);

/* After finish: a side's figures (borrowed from w), and a table's rows (borrowed
 * from w: *rows valid until destroy). Rows are sorted: rule versions, reasons and
 * campaigns by key; tiers from DISCIPLE up to HEAD, then "(none)"; outcomes in
 * EVENTS.md order; ambassadors by the absolute difference of their amounts, then
 * of their counts, largest first, ties by uid. */
const dashi_whatif_side *dashi_whatif_side_get(const dashi_whatif *w, int side);
size_t dashi_whatif_rows(const dashi_whatif *w, dashi_whatif_table t, const dashi_whatif_row **rows);
/* The row of key in table t, or NULL when neither side has it. */
const dashi_whatif_row *dashi_whatif_find(const dashi_whatif *w, dashi_whatif_table t, const char *key);

/* "12,345.67" / "-0.05" of fen (plus: "+" before a positive number), into buf (>= 32 bytes). */
const char *dashi_whatif_yuan(char *buf, size_t size, int64_t fen, int plus);

/* The terminal report: totals, then one table per dimension, ambassadors limited
 * to the top ones (top > 0) whose figures differ. */
void dashi_whatif_print(const dashi_whatif *w, FILE *out, size_t top);

/* The same as one self-contained HTML page (inline CSS and inline SVG bar charts,
 * no script, no external resource). DASHI_ERR_IO when writing fails. */
dashi_err dashi_whatif_html(const dashi_whatif *w, FILE *out, size_t top, char *errstr, size_t errstr_size);

#endif
