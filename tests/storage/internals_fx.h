/* The fixture of the storage-internals tests (test_internals.c,
 * test_storage_snapshots.c): a store in a temporary folder, commands built
 * field by field, and a runner that removes the folder at exit. */
#ifndef KYUFU_TESTS_STORAGE_INTERNALS_FX_H
#define KYUFU_TESTS_STORAGE_INTERNALS_FX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "sink.h"

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            exit(1);                                                         \
        }                                                                    \
    } while (0)
#define CHECK_RV(expr, want)                                                 \
    do {                                                                     \
        int rv_ = (expr);                                                    \
        if (rv_ != (want)) {                                                 \
            fprintf(stderr, "%s:%d: %s = %d (%s), want %d\n", __FILE__,      \
                    __LINE__, #expr, rv_, kyufu_storage_strerror(rv_),       \
                    (want));                                                 \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

#define OK KYUFU__V1__CODE__OK
#define T0 ((int64_t)1775001600000) /* 2026-04-01T00:00:00Z */

struct fx
{
    char dir[128];
    struct kyufu_storage *s;
    uint64_t index;
    uint64_t seq;
    int64_t now;
    struct kyufu_storage_options o;
};

/* The temporary folder every fixture store is made in. */
extern char fx_root[64];
extern int fx_n_dirs;

void fx_open_opts(struct fx *f, size_t map, size_t max);
void fx_open(struct fx *f);
void fx_reopen(struct fx *f);
Kyufu__V1__Command *cmd_new(struct fx *f, const char *actor);
void cmd_free(Kyufu__V1__Command *c);
Kyufu__V1__Command *c_staff(struct fx *f, const char *actor, const char *id, uint32_t roles);
Kyufu__V1__Command *c_household(struct fx *f, const char *actor, const char *no, const char *address);
void c_household_free(Kyufu__V1__Command *c);
Kyufu__V1__Command *c_program(struct fx *f, const char *actor, const char *code);
Kyufu__V1__Command *c_by_code(struct fx *f, const char *actor, Kyufu__V1__Command__BodyCase bc, const char *code);
Kyufu__V1__Command *c_submit(struct fx *f, const char *actor, const char *program, const char *hh);
Kyufu__V1__Command *c_approve(struct fx *f, const char *actor, uint64_t id);
Kyufu__V1__Command *c_batch(struct fx *f, const char *actor, const char *program, size_t n);
Kyufu__V1__Command *c_confirm(struct fx *f, const char *actor, uint64_t id);
int apply_n(struct fx *f, Kyufu__V1__Command **cmds, size_t n, struct kyufu_storage_results *out);
uint64_t apply1(struct fx *f, Kyufu__V1__Command *c, Kyufu__V1__Code code);
void world(struct fx *f, int households);
void digest(struct fx *f, uint8_t d[32]);
void invariants(struct fx *f);
void snapshot(struct fx *f, struct t_sink *k);

struct fx_test
{
    const char *name;
    void (*fn)(void);
};

/* Run the tests whose name contains argv[1] (all without it) in a new
 * temporary folder, removed at exit; 0, or 1 when the folder cannot be
 * made (a failed CHECK exits 1 itself). */
int fx_run(int argc, char **argv, const struct fx_test *tests, size_t n);

#endif /* KYUFU_TESTS_STORAGE_INTERNALS_FX_H */
