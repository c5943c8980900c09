/* httpd.h — a tiny HTTP server (libmicrohttpd, its own thread) answering GET by path through one callback.
 *
 * Used for /metrics, /healthz and /readyz (consumers/telemetry.c). The callback
 * runs on the server's thread: it must only touch what is safe from there (the
 * metrics registry has its own lock; the telemetry health fields are atomics).
 */
#ifndef DASHI_HTTPD_H
#define DASHI_HTTPD_H

#include <stddef.h>

#include "core/error.h"

/* Fill *body (malloc'ed; the server frees it), *len and *content_type (static) for
 * path; return the HTTP status. Called for GET and HEAD only (others get 405). */
typedef int (*dashi_httpd_handler)(void *opaque, const char *path, char **body, size_t *len,
                                   const char **content_type);

typedef struct dashi_httpd dashi_httpd;

/* Split "HOST:PORT" ("127.0.0.1:9464", "[::1]:9464", ":9464" = every interface)
 * into host (may come back "") and port 0..65535. DASHI_ERR_INVALID otherwise. */
dashi_err dashi_httpd_parse_listen(const char *listen, char *host, size_t host_size, int *port, char *errstr,
                                   size_t errstr_size);

/* Listen on listen (see above; port 0 = an ephemeral port) and serve until stop.
 * handler and opaque are borrowed for the server's life. */
dashi_httpd *dashi_httpd_start(const char *listen, dashi_httpd_handler handler, void *opaque, char *errstr,
                               size_t errstr_size);
/* The port actually bound. */
int dashi_httpd_port(const dashi_httpd *h);
/* Stop the thread, close the socket, free. NULL-safe. */
void dashi_httpd_stop(dashi_httpd *h);

#endif
