/* raft_uv on a stopped node's Raft directory, with no network: a private
 * libuv loop, a raft_uv_tcp transport that is never started, raft_uv with
 * auto-recovery off (it never deletes a segment).  Shared by recover.c
 * and seed.c.  Synchronous: glue__rio_close runs the loop until raft_uv
 * closed. */
#ifndef KYUFU_GLUE_OFFLINE_IO_H
#define KYUFU_GLUE_OFFLINE_IO_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "entry_batches.h"

struct glue_rio
{
    uv_loop_t loop;
    struct raft_uv_transport transport;
    struct raft_io io;
    bool loop_ok, transport_ok, io_ok, io_inited;
    bool closed;
};

/* Open raft_uv on raft_dir as node id/address (io->init done), after
 * glue__segments_check (CORRUPT: an open segment raft_uv would misread).
 * 0, or a KYUFU_GLUE_E* code with errmsg; call glue__rio_close either
 * way. */
int glue__rio_open(struct glue_rio *x,
                   const char *raft_dir,
                   uint64_t id,
                   const char *address,
                   char *errmsg,
                   size_t errmsg_len);

/* Close whatever glue__rio_open opened; the loop is closed after. */
void glue__rio_close(struct glue_rio *x);

/* glue__rio_free_loaded: entry_batches.h. */

/* Format into errmsg (NULL or len 0: nothing).  The raft-glue error
 * formatter, glue.c's too. */
void glue__rio_errf(char *errmsg, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
