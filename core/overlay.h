/* overlay.h — a batch's window on a store: reads guessed then checked in one mget, write sets staged and applied as one chain.
 *
 * The engine runs a batch of steps (events and timers) against an overlay instead
 * of the store, so the batch costs a few round trips instead of several per step:
 *   - a read of a key the batch has not seen is answered at once with a guess —
 *     the bytes the store held when a batch last read or wrote the key (the
 *     overlay keeps them, in a bounded LRU, from batch to batch; a write passed
 *     through outside a batch makes it forget that key), else absent —
 *     remembered with the first step that read it;
 *   - a step's write set is staged, not sent; reads of later steps in the batch see
 *     its writes;
 *   - dashi_overlay_check() reads every guessed key from the store in one mget. A
 *     wrong guess names the first step that read it: the engine rewinds the batch
 *     to that step (dashi_overlay_rewind) and runs it again, now on the store's
 *     bytes. When no guess was wrong, every step has read what the store holds as
 *     the steps before it in the batch left it — exactly what running them one at
 *     a time reads, with no concurrent writer;
 *   - dashi_overlay_commit() applies the staged sets as one chain
 *     (dashi_state_apply_chain): a set is applied only when every set before it
 *     was, so a set that fails its checks (another writer, a duplicate marker)
 *     leaves the store as if the batch had stopped right before it.
 * Timers: the first timers_due() of a batch reads the store's timers due up to the
 * batch's horizon once; every query is then answered from them and the staged
 * TIMER_ADD / TIMER_DEL, with no round trip. The store is read again (more
 * timers, or a later horizon) only when an answer could depend on a timer that
 * was not read.
 *
 * Several writers: keys are read from the store once per batch, at the check, not
 * at each step; between that read and the commit another writer may change them.
 * The engine's guard (CHECK_EQ on every record a step writes, against the bytes
 * the overlay gave it) and the fencing ops the pipeline's hook adds catch what
 * would be lost, as they do one step at a time; timers another writer adds during
 * a batch are seen by the next batch.
 *
 * Outside a batch (after dashi_overlay_end, or before any begin) the overlay's
 * store face passes every call through to the store unchanged, so one view over
 * it serves both ways of running. One overlay = one thread.
 */
#ifndef DASHI_OVERLAY_H
#define DASHI_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/state.h"

typedef struct dashi_overlay dashi_overlay;

/* Borrows inner for the overlay's lifetime. NULL on out of memory. */
dashi_overlay *dashi_overlay_new(dashi_state *inner);
void dashi_overlay_destroy(dashi_overlay *o); /* NULL-safe; never destroys inner */

/* The overlay as a store (borrowed, lives as long as o): what the view and the
 * engine read and write through. Outside a batch every op goes to inner. In a
 * batch mget and timers_due are answered as above, apply and apply_chain are
 * refused (DASHI_ERR_INTERNAL: stage instead), scan, timers_count and clear go to
 * inner (they do not see the staged sets). Its destroy op destroys o. */
dashi_state *dashi_overlay_state(dashi_overlay *o);

/* Keys starting with prefix (copied; NULL or "": none) are never kept as guesses
 * between batches: keys read once and written once (de-duplication markers) would
 * only push out the bytes of keys read again. */
void dashi_overlay_forget_prefix(dashi_overlay *o, const char *prefix);

/* Start a batch. horizon: the latest instant timers will be asked for (a hint:
 * a later query reads the store again); DASHI_TIME_NONE when unknown. */
void dashi_overlay_begin(dashi_overlay *o, dashi_time horizon);
/* Open the next step of the batch (numbered from 0): reads from now on are its.
 * Returns its number. Every opened step is closed by dashi_overlay_stage() (with
 * an empty set when it writes nothing) or dropped by dashi_overlay_rewind(). */
size_t dashi_overlay_step(dashi_overlay *o);
/* Close the open step with ws as its write set: takes ws's ops (ws is left empty
 * and usable). Later reads of the batch see its writes. DASHI_ERR_INTERNAL when no
 * step is open. */
dashi_err dashi_overlay_stage(dashi_overlay *o, dashi_writeset *ws);
/* Number of staged steps, and of ops in their sets. */
size_t dashi_overlay_steps(const dashi_overlay *o);
size_t dashi_overlay_staged_ops(const dashi_overlay *o);
/* Read every guessed key from the store (one mget). *first_wrong: the first
 * step that read a key whose guess was wrong, SIZE_MAX when none. From now on
 * those keys read as the store gave them. Non-OK when the store could not be read. */
dashi_err dashi_overlay_check(dashi_overlay *o, size_t *first_wrong, char *errstr, size_t errstr_size);
/* Drop steps step.. (their sets and the attribution of their reads); the next
 * dashi_overlay_step() opens step again. */
void dashi_overlay_rewind(dashi_overlay *o, size_t step);
/* Apply every staged set as one chain. *n_applied: the steps applied (a prefix;
 * steps with empty sets count); *failed: DASHI_OK when all were, else the result
 * of the first one not applied (DASHI_ERR_CONFLICT: a check failed). The return
 * value is non-OK when the store could not be reached or refused the chain
 * (errstr says why). The batch stays open (dashi_overlay_end closes it). */
dashi_err dashi_overlay_commit(dashi_overlay *o, size_t *n_applied, dashi_err *failed, char *errstr,
                               size_t errstr_size);
/* End the batch: staged sets and everything read are dropped; back to passing through. */
void dashi_overlay_end(dashi_overlay *o);

/* Counters since the overlay was created. */
typedef struct dashi_overlay_stats {
    uint64_t batches;      /* dashi_overlay_begin() calls */
    uint64_t reads;        /* keys read in batches (mget keys) */
    uint64_t guesses;      /* reads answered by a guess (keys new to the batch) */
    uint64_t wrong;        /* guesses the check found wrong */
    uint64_t checks;       /* dashi_overlay_check() calls that read the store */
    uint64_t rewinds;      /* dashi_overlay_rewind() calls that dropped staged steps */
    uint64_t timer_reads;  /* timers_due calls to the store in batches */
    uint64_t timer_queries;/* timers_due calls answered in batches */
    uint64_t commits;      /* dashi_overlay_commit() calls */
    uint64_t sets;         /* non-empty sets committed */
} dashi_overlay_stats;
void dashi_overlay_stats_get(const dashi_overlay *o, dashi_overlay_stats *out);

#endif
