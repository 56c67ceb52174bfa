/* raft-glue's configuration bounds (raft-glue/glue_limits.h) at their
 * edges: for every bounded field, the minimum and the maximum are accepted
 * by kyufu_glue_init, one under the minimum and one over the maximum fail
 * with CONFIG and an errmsg naming the field; 0 means the default.  The
 * relation heartbeat <= election / 2 is checked at equality and one over.
 *
 * An accepted init is closed at once (nothing is started: no socket is
 * opened before kyufu_glue_start).  One temporary directory under /tmp. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "glue.h"
#include "glue_limits.h"
#include "storage.h"

#define CHECK(x)                                                          \
    do {                                                                  \
        if (!(x)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__,        \
                    __LINE__, #x);                                        \
            exit(1);                                                      \
        }                                                                 \
    } while (0)

static uv_loop_t loop;
static struct kyufu_storage *store;
static char tmp[64];
static char raft_dir[128];
static unsigned n_closed;

static int rm_entry(const char *p, const struct stat *st, int f,
                    struct FTW *w)
{
    (void)st;
    (void)f;
    (void)w;
    return remove(p);
}

static void closed_cb(void *arg)
{
    (void)arg;
    n_closed++;
}

static void base(struct kyufu_glue_config *c)
{
    memset(c, 0, sizeof *c);
    c->id = 1;
    c->address = "127.0.0.1:1";
    c->raft_dir = raft_dir;
}

/* Init with c; expect success (then close) or CONFIG naming `field`. */
static void expect(const struct kyufu_glue_config *c, bool ok,
                   const char *field, unsigned value)
{
    struct kyufu_glue *g = NULL;
    char err[256] = "";
    int rv = kyufu_glue_init(&loop, c, store, &g, err, sizeof err);
    if (ok != (rv == 0)) {
        fprintf(stderr, "%s = %u: init returned %d (%s), expected %s\n",
                field, value, rv, err, ok ? "success" : "CONFIG");
        exit(1);
    }
    if (ok) {
        unsigned before = n_closed;
        kyufu_glue_close(g, closed_cb, NULL);
        while (n_closed == before) {
            uv_run(&loop, UV_RUN_ONCE);
        }
        return;
    }
    CHECK(rv == KYUFU_GLUE_ECONFIG && g == NULL);
    if (strstr(err, field) == NULL) {
        fprintf(stderr, "%s = %u: errmsg \"%s\" does not name it\n", field,
                value, err);
        exit(1);
    }
}

#define FIELD(name, NAME)                                                  \
    {#name, offsetof(struct kyufu_glue_config, name), KYUFU_##NAME##_MIN,  \
     KYUFU_##NAME##_MAX}

int main(void)
{
    struct kyufu_storage_options o;
    struct kyufu_glue_config c;
    char err[256] = "";
    char path[128];

    snprintf(tmp, sizeof tmp, "/tmp/kyufu-glue-config-XXXXXX");
    CHECK(mkdtemp(tmp) != NULL);
    snprintf(raft_dir, sizeof raft_dir, "%s/raft", tmp);
    CHECK(mkdir(raft_dir, 0700) == 0);
    snprintf(path, sizeof path, "%s/store", tmp);
    memset(&o, 0, sizeof o);
    o.path = path;
    o.map_size_bytes = (size_t)16 << 20;
    o.no_sync = true;
    CHECK(kyufu_storage_open(&o, &store, err, sizeof err) == 0);
    CHECK(uv_loop_init(&loop) == 0);

    static const struct
    {
        const char *name;
        size_t off;
        unsigned min, max;
    } fields[] = {
        FIELD(election_timeout_ms, ELECTION_TIMEOUT_MS),
        FIELD(heartbeat_timeout_ms, HEARTBEAT_TIMEOUT_MS),
        FIELD(snapshot_threshold_entries, SNAPSHOT_THRESHOLD_ENTRIES),
        FIELD(snapshot_trailing_entries, SNAPSHOT_TRAILING_ENTRIES),
        FIELD(max_inflight_entries, MAX_INFLIGHT_ENTRIES),
        FIELD(group_commit_commands_max, GROUP_COMMIT_COMMANDS_MAX),
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        unsigned values[4] = {fields[i].min - 1, fields[i].min,
                              fields[i].max, fields[i].max + 1};
        for (int k = 0; k < 4; k++) {
            if (values[k] == 0) {
                continue; /* 0 is "the default", tested below */
            }
            base(&c);
            /* The heartbeat's maximum needs an election twice as long. */
            if (strcmp(fields[i].name, "heartbeat_timeout_ms") == 0) {
                c.election_timeout_ms = KYUFU_ELECTION_TIMEOUT_MS_MAX;
            }
            *(unsigned *)((char *)&c + fields[i].off) = values[k];
            expect(&c, k == 1 || k == 2, fields[i].name, values[k]);
        }
    }
    /* All defaults. */
    base(&c);
    expect(&c, true, "defaults", 0);
    /* heartbeat * 2 <= election: equal accepted, one more refused. */
    base(&c);
    c.election_timeout_ms = 400;
    c.heartbeat_timeout_ms = 200;
    expect(&c, true, "heartbeat_timeout_ms", 200);
    c.heartbeat_timeout_ms = 201;
    expect(&c, false, "heartbeat_timeout_ms", 201);
    /* id, address, raft_dir are required. */
    base(&c);
    c.id = 0;
    expect(&c, false, "id", 0);
    base(&c);
    c.address = "";
    expect(&c, false, "address", 0);
    base(&c);
    c.raft_dir = NULL;
    expect(&c, false, "raft_dir", 0);

    CHECK(uv_loop_close(&loop) == 0);
    kyufu_storage_close(store);
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("glue-config: ok\n");
    return 0;
}
