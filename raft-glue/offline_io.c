/* Offline raft_uv (offline_io.h). */
#include "offline_io.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "glue.h"
#include "glue_limits.h"
#include "segment_check.h"

void glue__rio_errf(char *errmsg, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (errmsg == NULL || len == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(errmsg, len, fmt, ap);
    va_end(ap);
}

#define errf glue__rio_errf

static void io_closed(struct raft_io *io)
{
    struct glue_rio *x = io->data;
    x->closed = true;
}

void glue__rio_close(struct glue_rio *x)
{
    if (x->io_inited) {
        x->io.close(&x->io, io_closed);
        while (!x->closed) {
            if (uv_run(&x->loop, UV_RUN_ONCE) == 0 && !x->closed) {
                break; /* nothing left that could close it */
            }
        }
        assert(x->closed);
    }
    if (x->loop_ok) {
        /* libraft 0.22.1 may finish work after its close callback
         * (docs/raft.md "raft_uv reports closed twice"): free its struct
         * only once the loop is idle; a second callback only sets closed. */
        uv_run(&x->loop, UV_RUN_DEFAULT);
    }
    if (x->io_ok) {
        raft_uv_close(&x->io);
    }
    if (x->transport_ok) {
        raft_uv_tcp_close(&x->transport);
    }
    if (x->loop_ok) {
        uv_run(&x->loop, UV_RUN_DEFAULT); /* remaining close callbacks */
        int rv = uv_loop_close(&x->loop);
        assert(rv == 0);
        (void)rv;
    }
}

int glue__rio_open(struct glue_rio *x,
                    const char *raft_dir,
                    uint64_t id,
                    const char *address,
                    char *errmsg,
                    size_t errmsg_len)
{
    int rv;
    memset(x, 0, sizeof *x);
    /* Before raft_uv reads the open segments, as kyufu_glue_start does:
     * damage it would take for a torn write (dropping entries in silence)
     * or a cut file it would abort on (segment_check.h). */
    if (glue__segments_check(raft_dir, errmsg, errmsg_len) != 0) {
        return KYUFU_GLUE_ECORRUPT;
    }
    rv = uv_loop_init(&x->loop);
    if (rv != 0) {
        errf(errmsg, errmsg_len, "libuv loop: %s", uv_strerror(rv));
        return KYUFU_GLUE_EIO;
    }
    x->loop_ok = true;
    x->transport.version = 1; /* 0.22.1 refuses an unset version */
    rv = raft_uv_tcp_init(&x->transport, &x->loop);
    if (rv != 0) {
        errf(errmsg, errmsg_len, "raft_uv_tcp_init: %s", raft_strerror(rv));
        return rv == RAFT_NOMEM ? KYUFU_GLUE_ENOMEM : KYUFU_GLUE_EIO;
    }
    x->transport_ok = true;
    x->io.version = 2; /* 0.22.1 needs the struct versions set */
    x->io.data = x;
    rv = raft_uv_init(&x->io, &x->loop, raft_dir, &x->transport);
    if (rv != 0) {
        errf(errmsg, errmsg_len, "raft_uv_init %s: %s", raft_dir,
             x->io.errmsg);
        return rv == RAFT_NOMEM ? KYUFU_GLUE_ENOMEM : KYUFU_GLUE_EIO;
    }
    x->io.data = x;
    x->io_ok = true;
    raft_uv_set_auto_recovery(&x->io, false); /* never delete a segment */
    raft_uv_set_segment_size(&x->io, KYUFU_SEGMENT_SIZE_BYTES);
    rv = x->io.init(&x->io, id, address);
    if (rv != 0) {
        errf(errmsg, errmsg_len, "raft_uv %s: %s", raft_dir, x->io.errmsg);
        return rv == RAFT_NOMEM ? KYUFU_GLUE_ENOMEM : KYUFU_GLUE_EIO;
    }
    x->io_inited = true;
    return 0;
}

