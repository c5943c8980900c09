/* generate.h — a seeded, realistic stream of input events for demos, differential tests and benchmarks.
 *
 * The mix follows the June 2022 program: ambassadors (a few flagged as staff),
 * campaign sign-ups, customers reached by registration links, login links and
 * campaign links with a long-tailed ambassador popularity, real-name
 * verifications, prepaid and postpaid orders across eligible and excluded
 * categories, carts, renewals, full and partial refunds inside and after the
 * review, and shared identity values (multi-account customers, self-referring
 * ambassadors, a company switchboard phone shared by many accounts). The same
 * seed and sizes give byte-identical output.
 */
#ifndef DASHI_GENERATE_H
#define DASHI_GENERATE_H

#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "core/time.h"

typedef struct dashi_gen_opts {
    uint64_t seed;
    uint32_t ambassadors;   /* enrolled ambassadors */
    uint32_t customers;     /* customer accounts */
    dashi_time start;       /* first day of the stream (00:00 CST) */
    uint32_t days;          /* length of the customer activity window */
    int sorted;             /* write in occurred_at order (1) or shuffled (0) */
} dashi_gen_opts;

/* Defaults: seed 1, 1000 ambassadors, 10000 customers, 2022-06-01, 30 days, sorted. */
void dashi_gen_opts_default(dashi_gen_opts *o);

/* Write the stream as NDJSON to out; *n_events receives the count. */
dashi_err dashi_generate(const dashi_gen_opts *o, FILE *out, uint64_t *n_events, char *errstr, size_t errstr_size);

#endif
