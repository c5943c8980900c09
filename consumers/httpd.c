/* httpd.c — libmicrohttpd daemon with an internal polling thread; one handler for every GET.
 *
 * The address is resolved with getaddrinfo (numeric port) and given to
 * MHD_OPTION_SOCK_ADDR, so "127.0.0.1:0" binds an ephemeral port that
 * MHD_DAEMON_INFO_BIND_PORT then reports. libmicrohttpd's own messages go
 * through the process log (component "http"). Few connections, short timeouts:
 * this serves Prometheus scrapes and probes, not traffic.
 */
#include "consumers/httpd.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "consumers/log.h"

struct dashi_httpd {
    struct MHD_Daemon *d;
    dashi_httpd_handler handler;
    void *opaque;
    int port;
};

dashi_err dashi_httpd_parse_listen(const char *listen, char *host, size_t host_size, int *port, char *errstr,
                                   size_t errstr_size) {
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "'%s': expected HOST:PORT", listen ? listen : "");
    const char *h = listen, *h_end = colon;
    if (*h == '[') { /* [v6]:port */
        if (h_end == h || h_end[-1] != ']')
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "'%s': expected [IPv6]:PORT", listen);
        h++;
        h_end--;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 0 || p > 65535)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "'%s': port must be 0..65535", listen);
    if ((size_t)(h_end - h) >= host_size)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "'%s': host too long", listen);
    memcpy(host, h, (size_t)(h_end - h));
    host[h_end - h] = '\0';
    *port = (int)p;
    return DASHI_OK;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls) {
    dashi_httpd *h = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    char *body = NULL;
    size_t len = 0;
    const char *type = "text/plain; charset=utf-8";
    int status;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        body = strdup("method not allowed\n");
        len = body ? strlen(body) : 0;
    } else {
        status = h->handler(h->opaque, url, &body, &len, &type);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body ? body : (void *)"",
                                                                body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result r = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    dashi_logv(DASHI_LOG_WARN, "http", fmt, ap);
}

dashi_httpd *dashi_httpd_start(const char *listen, dashi_httpd_handler handler, void *opaque, char *errstr,
                               size_t errstr_size) {
    char host[256], port_s[16];
    int port = 0;
    struct addrinfo hints, *ai = NULL;
    dashi_httpd *h = NULL;
    if (dashi_httpd_parse_listen(listen, host, sizeof(host), &port, errstr, errstr_size) != DASHI_OK)
        goto out;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port_s, sizeof(port_s), "%d", port);
    int gai = getaddrinfo(host[0] ? host : NULL, port_s, &hints, &ai);
    if (gai != 0 || !ai) {
        dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "metrics.listen '%s': %s", listen, gai_strerror(gai));
        goto out;
    }
    if (!(h = calloc(1, sizeof(*h)))) {
        dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    h->handler = handler;
    h->opaque = opaque;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    h->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
                            NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!h->d) {
        dashi_errf(DASHI_ERR_TRANSPORT, errstr, errstr_size, "metrics.listen '%s': cannot listen (address in use?)",
                   listen);
        free(h);
        h = NULL;
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? (int)info->port : port;
out:
    if (ai)
        freeaddrinfo(ai);
    return h;
}

int dashi_httpd_port(const dashi_httpd *h) {
    return h ? h->port : 0;
}

void dashi_httpd_stop(dashi_httpd *h) {
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
