/* Quorum-loss recovery: read a stopped node's Raft log, and force a
 * one-voter configuration onto it (contract in glue.h, runbook in
 * docs/restore.md "Quorum-loss recovery").
 *
 * Happy path: a private libuv loop → raft_uv over a plain raft_uv_tcp
 * transport (never started: nothing listens or dials) → io->init →
 * io->load (term, vote, snapshot, entries) → the latest configuration is
 * the last RAFT_CHANGE entry, else the snapshot's → io->close, loop run
 * until closed.  kyufu_glue_recover does that once to check what the
 * operator confirmed, then again with io->recover (0.22.1 uv.c uvRecover:
 * loads the log itself, then writes one closed segment holding the new
 * configuration at last index + 1; that entry has term 1, which libraft
 * accepts: it is a RAFT_CHANGE, never applied by the FSM, and the node's
 * next election term comes from the metadata).  A fresh raft_uv per step:
 * load and recover each expect a raft_uv nobody loaded before.
 *
 * Failure modes: a log raft_uv refuses to load (auto-recovery is off, so
 * nothing is deleted) is CORRUPT; a write error inside io->recover is IO
 * and may leave the closed segment half-written (raft_uv writes it to a
 * temporary name, then renames: the log is the old one or the new one). */
#include <assert.h>
#include <inttypes.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glue.h"
#include "glue_limits.h"
#include "member_address.h"
#include "offline_io.h"

#define errf glue__rio_errf

static void fill_members(struct kyufu_glue_log_info *out,
                         const struct raft_configuration *c)
{
    out->n_members = c->n;
    for (unsigned i = 0; i < c->n && i < KYUFU_GLUE_RECOVER_MEMBERS_MAX; i++) {
        struct kyufu_glue_member *m = &out->members[i];
        memset(m, 0, sizeof *m);
        m->id = c->servers[i].id;
        m->role = c->servers[i].role == RAFT_VOTER     ? KYUFU_GLUE_ROLE_VOTER
                  : c->servers[i].role == RAFT_STANDBY ? KYUFU_GLUE_ROLE_STANDBY
                                                       : KYUFU_GLUE_ROLE_SPARE;
        /* The whole recorded string ("RAFT" or "RAFT API") goes in
         * raft_address here: kyufu_glue_recover records it again as it
         * was.  api_address gets the API part for display. */
        snprintf(m->raft_address, sizeof m->raft_address, "%s",
                 c->servers[i].address);
        char raft[KYUFU_GLUE_MEMBER_ADDRESS_BYTES];
        glue__address_split(c->servers[i].address, raft, sizeof raft,
                            m->api_address, sizeof m->api_address);
    }
}

/* Load the open rio's log into *out. */
static int load(struct glue_rio *x,
                const char *raft_dir,
                struct kyufu_glue_log_info *out,
                char *errmsg,
                size_t errmsg_len)
{
    raft_term term = 0;
    raft_id voted_for = 0;
    struct raft_snapshot *snap = NULL;
    raft_index start = 0;
    struct raft_entry *entries = NULL;
    size_t n = 0;
    int rv;

    memset(out, 0, sizeof *out);
    rv = x->io.load(&x->io, &term, &voted_for, &snap, &start, &entries, &n);
    if (rv != 0) {
        errf(errmsg, errmsg_len, "cannot load the Raft log in %s: %s (%s)",
             raft_dir, raft_strerror(rv), x->io.errmsg);
        return rv == RAFT_NOMEM ? KYUFU_GLUE_ENOMEM : KYUFU_GLUE_ECORRUPT;
    }
    out->term = term;
    out->voted_for = voted_for;
    if (snap != NULL) {
        out->snapshot_index = snap->index;
        out->snapshot_term = snap->term;
        out->last_index = snap->index;
        out->last_term = snap->term;
        out->configuration_index = snap->configuration_index;
        fill_members(out, &snap->configuration);
    }
    if (n > 0) {
        out->last_index = start + n - 1;
        out->last_term = entries[n - 1].term;
    }
    for (size_t i = n; i-- > 0;) {
        if (entries[i].type != RAFT_CHANGE) {
            continue;
        }
        struct raft_configuration c;
        raft_configuration_init(&c);
        rv = raft_configuration_decode(&entries[i].buf, &c);
        if (rv != 0) {
            raft_configuration_close(&c);
            glue__rio_free_loaded(snap, entries, n);
            errf(errmsg, errmsg_len, "%s: configuration entry %" PRIu64
                 " does not decode: %s", raft_dir, (uint64_t)(start + i),
                 raft_strerror(rv));
            return rv == RAFT_NOMEM ? KYUFU_GLUE_ENOMEM : KYUFU_GLUE_ECORRUPT;
        }
        out->configuration_index = start + i;
        fill_members(out, &c);
        raft_configuration_close(&c);
        break;
    }
    glue__rio_free_loaded(snap, entries, n);
    assert(out->configuration_index <= out->last_index);
    if (out->last_index == 0 || out->n_members == 0) {
        errf(errmsg, errmsg_len, "%s holds no Raft log (a node that never "
             "ran, or the wrong data folder): nothing to recover", raft_dir);
        return KYUFU_GLUE_ECONFIG;
    }
    return 0;
}

int kyufu_glue_log_inspect(const char *raft_dir,
                           uint64_t id,
                           const char *address,
                           struct kyufu_glue_log_info *out,
                           char *errmsg,
                           size_t errmsg_len)
{
    struct glue_rio x;
    int rv;
    if (raft_dir == NULL || address == NULL || out == NULL || id == 0) {
        errf(errmsg, errmsg_len, "inspect: raft_dir, address and id > 0 needed");
        return KYUFU_GLUE_EINVALID;
    }
    rv = glue__rio_open(&x, raft_dir, id, address, errmsg, errmsg_len);
    if (rv == 0) {
        rv = load(&x, raft_dir, out, errmsg, errmsg_len);
    }
    glue__rio_close(&x);
    return rv;
}

static const struct kyufu_glue_member *find(const struct kyufu_glue_log_info *l,
                                            uint64_t id)
{
    for (size_t i = 0; i < l->n_members && i < KYUFU_GLUE_RECOVER_MEMBERS_MAX; i++) {
        if (l->members[i].id == id) {
            return &l->members[i];
        }
    }
    return NULL;
}

int kyufu_glue_recover(const char *raft_dir,
                       uint64_t id,
                       const char *address,
                       const struct kyufu_glue_log_info *seen,
                       char *errmsg,
                       size_t errmsg_len)
{
    struct kyufu_glue_log_info now;
    struct raft_configuration conf;
    const struct kyufu_glue_member *me;
    struct glue_rio x;
    size_t voters = 0;
    int rv;

    if (seen == NULL) {
        errf(errmsg, errmsg_len, "recover: what the operator confirmed is needed");
        return KYUFU_GLUE_EINVALID;
    }
    rv = kyufu_glue_log_inspect(raft_dir, id, address, &now, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    if (now.last_index != seen->last_index || now.last_term != seen->last_term ||
        now.term != seen->term) {
        errf(errmsg, errmsg_len, "the Raft log changed since it was shown "
             "(last index %" PRIu64 " term %" PRIu64 ", now %" PRIu64 " term %"
             PRIu64 "): nothing written; run the recovery again",
             seen->last_index, seen->last_term, now.last_index, now.last_term);
        return KYUFU_GLUE_ESTALE;
    }
    me = find(&now, id);
    if (me == NULL || me->role != KYUFU_GLUE_ROLE_VOTER) {
        errf(errmsg, errmsg_len, "node %" PRIu64 " is %s in the latest "
             "configuration (index %" PRIu64 "): only a voter holds every "
             "committed entry; recover a surviving voter instead",
             id, me == NULL ? "not a member" : kyufu_glue_role_name(me->role),
             now.configuration_index);
        return KYUFU_GLUE_ENOTFOUND;
    }
    for (size_t i = 0; i < now.n_members && i < KYUFU_GLUE_RECOVER_MEMBERS_MAX; i++) {
        voters += now.members[i].role == KYUFU_GLUE_ROLE_VOTER;
    }
    if (voters == 1 && now.n_members == 1) {
        errf(errmsg, errmsg_len, "node %" PRIu64 " is already the one voter "
             "(configuration at index %" PRIu64 "): nothing to recover; start "
             "it and add nodes", id, now.configuration_index);
        return KYUFU_GLUE_EEXISTS;
    }

    assert(me->id == id && me->role == KYUFU_GLUE_ROLE_VOTER);
    assert(now.last_index == seen->last_index && now.last_index > 0);
    raft_configuration_init(&conf);
    rv = raft_configuration_add(&conf, id, me->raft_address, RAFT_VOTER);
    if (rv != 0) {
        raft_configuration_close(&conf);
        errf(errmsg, errmsg_len, "recover: configuration: %s", raft_strerror(rv));
        return rv == RAFT_NOMEM ? KYUFU_GLUE_ENOMEM : KYUFU_GLUE_EINVALID;
    }
    rv = glue__rio_open(&x, raft_dir, id, address, errmsg, errmsg_len);
    if (rv == 0) {
        rv = x.io.recover(&x.io, &conf);
        if (rv != 0) {
            errf(errmsg, errmsg_len, "raft_recover %s: %s (%s)", raft_dir,
                 raft_strerror(rv), x.io.errmsg);
            rv = rv == RAFT_NOMEM ? KYUFU_GLUE_ENOMEM : KYUFU_GLUE_EIO;
        }
    }
    glue__rio_close(&x);
    raft_configuration_close(&conf);
    return rv;
}
