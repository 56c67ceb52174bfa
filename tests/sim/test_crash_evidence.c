/* raft-glue's crash evidence (crash_evidence.h) on libraft 0.22.1's
 * fixture: three servers, pre-vote on, election timeout 1,000 ms, server
 * 0 (id 1) the leader.  The glue's poll is played after every fixture
 * step: glue__crash_evidence_poll, and a tick through io_guard when it
 * says so, as glue.c timer_poll does.  The fixture only moves time from
 * event to event, so the heartbeat (its tick period) is 10 ms, the poll's
 * period: with 100 ms, two ranked attempts 40 ms apart would run at the
 * same tick, which the poll never does.
 *
 * - crash: the leader dies; with the evidence given to both followers a
 *   new leader is elected in the next term (no split vote) within 300 ms
 *   of virtual time; without it, nobody is leader 800 ms after the kill
 *   (each follower heard a heartbeat less than 100 ms before it and waits
 *   at least one election timeout): the bound is the mechanism's.
 * - flap: the leader stays healthy; server 1's link with it drops for
 *   50 ms and it gets the evidence: it campaigns (pre-vote) and is
 *   rejected, the leader keeps its leadership and every term stays, and
 *   server 1 follows the leader again; its evidence made it forget the
 *   leader (it grants pre-votes meanwhile), server 2 still has it.
 * - lagging: the survivor ranked first has the shorter log: denied, and
 *   the second's attempt wins.
 * - silent: a leader that stops answering (no evidence): with the silence
 *   rule the first follower to time out wins; without it the election
 *   waits for the other's later timeout.
 * - the evidence about a server that is not the leader arms nothing.
 *
 * Deterministic: virtual time, the fixture's seeded randomness. */
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "crash_evidence.h"
#include "glue_limits.h"
#include "io_guard.h"

#define N 3
#define ELECTION_MS 1000u
#define HEARTBEAT_MS 10u /* the fixture ticks this often: the poll's 10 ms */

struct cluster
{
    struct raft_fixture f;
    struct raft_fsm fsm[N];
    struct glue_io_guard guard[N];
    struct glue_crash_evidence crash[N];
    bool ever_candidate[N];
    bool silence; /* play glue__crash_evidence_silence too */
};

static void on_failed(struct glue_io_guard *g, const char *call, int rv)
{
    (void)g;
    fprintf(stderr, "io failure in %s: %d\n", call, rv);
    exit(1);
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
                     void **result)
{
    (void)fsm;
    (void)buf;
    *result = NULL;
    return 0;
}

/* Three servers, server 0 elected, everyone following it. */
static void setup(struct cluster *c)
{
    struct raft_configuration conf;
    memset(c, 0, sizeof *c);
    CHECK(raft_fixture_init(&c->f) == 0);
    for (unsigned i = 0; i < N; i++) {
        c->fsm[i].version = 1;
        c->fsm[i].apply = fsm_apply;
        CHECK(raft_fixture_grow(&c->f, &c->fsm[i]) == 0);
        struct raft *r = raft_fixture_get(&c->f, i);
        r->tracer = NULL;
        raft_set_election_timeout(r, ELECTION_MS);
        raft_set_heartbeat_timeout(r, HEARTBEAT_MS);
        raft_set_pre_vote(r, true);
        glue__io_guard_wrap(&c->guard[i], r, on_failed, NULL);
        c->crash[i].enabled = true;
    }
    c->silence = true; /* as the glue */
    CHECK(raft_fixture_configuration(&c->f, N, &conf) == 0);
    CHECK(raft_fixture_bootstrap(&c->f, &conf) == 0);
    raft_configuration_close(&conf);
    CHECK(raft_fixture_start(&c->f) == 0);
    raft_fixture_elect(&c->f, 0);
    CHECK(raft_state(raft_fixture_get(&c->f, 0)) == RAFT_LEADER);
    /* Both followers know the leader (its first heartbeat arrived). */
    raft_fixture_step_until_elapsed(&c->f, 3 * HEARTBEAT_MS);
    for (unsigned i = 1; i < N; i++) {
        raft_id id;
        const char *address;
        raft_leader(raft_fixture_get(&c->f, i), &id, &address);
        CHECK(id == 1);
    }
}

static void teardown(struct cluster *c)
{
    raft_fixture_close(&c->f);
    for (unsigned i = 0; i < N; i++) {
        glue__io_guard_close(&c->guard[i]);
    }
}

/* What glue.c's poll does for the crash evidence, for every live server. */
static void poll_all(struct cluster *c)
{
    raft_time now = raft_fixture_time(&c->f);
    for (unsigned i = 0; i < N; i++) {
        struct raft *r = raft_fixture_get(&c->f, i);
        if (!raft_fixture_alive(&c->f, i)) {
            continue;
        }
        if (c->silence && glue__crash_evidence_silence(r, now)) {
            c->crash[i].n_silences++;
        }
        if (glue__crash_evidence_poll(&c->crash[i], r, now)) {
            CHECK(glue__io_guard_tick(r->io));
        }
        if (raft_state(r) == RAFT_CANDIDATE) {
            c->ever_candidate[i] = true;
        }
    }
}

/* Step until a live server other than `not` leads, or `ms` pass; the
 * leader's index, or N. */
static unsigned run_until_new_leader(struct cluster *c, unsigned not, unsigned ms)
{
    raft_time end = raft_fixture_time(&c->f) + ms;
    poll_all(c);
    while (raft_fixture_time(&c->f) < end) {
        for (unsigned i = 0; i < N; i++) {
            if (i != not && raft_fixture_alive(&c->f, i) &&
                raft_state(raft_fixture_get(&c->f, i)) == RAFT_LEADER) {
                return i;
            }
        }
        raft_fixture_step(&c->f);
        poll_all(c);
    }
    return N;
}

static void give_evidence(struct cluster *c, unsigned i, raft_id lost)
{
    CHECK(glue__crash_evidence_lost(&c->crash[i], raft_fixture_get(&c->f, i), lost,
                                    raft_fixture_time(&c->f), NULL));
}

static void crash(bool with_evidence)
{
    struct cluster c;
    setup(&c);
    raft_term term = raft_current_term(raft_fixture_get(&c.f, 0));
    raft_fixture_kill(&c.f, 0);
    raft_time t0 = raft_fixture_time(&c.f);
    if (with_evidence) {
        give_evidence(&c, 1, 1);
        give_evidence(&c, 2, 1);
        /* Ranked: id 2 first, id 3 one step later. */
        CHECK(c.crash[1].due_ms == t0);
        CHECK(c.crash[2].due_ms == t0 + KYUFU_CRASH_ELECTION_STEP_MS);
        unsigned l = run_until_new_leader(&c, 0, 300);
        CHECK(l < N);
        struct raft *r = raft_fixture_get(&c.f, l);
        CHECK(raft_current_term(r) == term + 1); /* one vote, no split */
        CHECK(l == 1); /* the first-ranked survivor, at its first try */
        raft_time elected = raft_fixture_time(&c.f) - t0;
        /* The second-ranked one granted the vote: its attempt is
         * cancelled, it never runs a second election. */
        CHECK(run_until_new_leader(&c, 1, 300) == N);
        CHECK(c.crash[2].n_attempts == 0 && c.crash[2].n_cancelled == 1);
        CHECK(!c.ever_candidate[2]);
        printf("crash: new leader id %llu in term %llu after %llu ms "
               "(election timeout %u ms)\n",
               (unsigned long long)r->id, (unsigned long long)term + 1,
               (unsigned long long)elected, ELECTION_MS);
    } else {
        CHECK(run_until_new_leader(&c, 0, 800) == N);
        printf("crash without evidence: no leader 800 ms after the kill\n");
    }
    teardown(&c);
}

static void flap(void)
{
    struct cluster c;
    setup(&c);
    raft_term term = raft_current_term(raft_fixture_get(&c.f, 0));
    raft_fixture_disconnect(&c.f, 0, 1);
    raft_fixture_disconnect(&c.f, 1, 0);
    give_evidence(&c, 1, 1);
    {
        raft_id id;
        const char *address;
        raft_leader(raft_fixture_get(&c.f, 1), &id, &address);
        CHECK(id == 0 && address == NULL); /* forgotten at the evidence */
    }
    raft_time t0 = raft_fixture_time(&c.f);
    while (raft_fixture_time(&c.f) < t0 + 50) {
        raft_fixture_step(&c.f);
        poll_all(&c);
    }
    raft_fixture_reconnect(&c.f, 0, 1);
    raft_fixture_reconnect(&c.f, 1, 0);
    /* Long enough for every attempt and a few heartbeats, shorter than an
     * election timeout: only the evidence could move anything. */
    CHECK(run_until_new_leader(&c, 0, ELECTION_MS - 100) == N);
    CHECK(c.ever_candidate[1]);          /* it did campaign */
    CHECK(c.crash[1].n_attempts >= 1);
    CHECK(!c.crash[1].armed);
    CHECK(raft_state(raft_fixture_get(&c.f, 0)) == RAFT_LEADER);
    for (unsigned i = 0; i < N; i++) {
        struct raft *r = raft_fixture_get(&c.f, i);
        raft_id id;
        const char *address;
        CHECK(raft_current_term(r) == term);
        raft_leader(r, &id, &address);
        CHECK(id == 1);
    }
    CHECK(!c.ever_candidate[2]);
    printf("flap: server id 2 campaigned %lu time(s), rejected; leader id 1 "
           "kept term %llu\n",
           c.crash[1].n_attempts, (unsigned long long)term);
    teardown(&c);
}

/* A silent leader (no connection closes: no evidence).  Server 1 times
 * out after 1,100 ms, server 2 after 1,900 ms.  Without the silence rule
 * server 1's pre-vote is rejected by server 2, which still has the leader
 * until its own timeout: the election waits for the later timeout.  With
 * it server 2 forgot the leader after 1,000 ms of silence and grants. */
static void silent(bool with_rule)
{
    struct cluster c;
    setup(&c);
    c.silence = with_rule;
    raft_term term = raft_current_term(raft_fixture_get(&c.f, 0));
    raft_fixture_kill(&c.f, 0);
    raft_fixture_get(&c.f, 1)->follower_state.randomized_election_timeout = 1100;
    raft_fixture_get(&c.f, 2)->follower_state.randomized_election_timeout = 1900;
    raft_time start = raft_fixture_get(&c.f, 2)->election_timer_start;
    unsigned l = run_until_new_leader(&c, 0, 1800);
    if (with_rule) {
        CHECK(l == 1);
        CHECK(raft_current_term(raft_fixture_get(&c.f, 1)) == term + 1);
        CHECK(c.crash[2].n_silences == 1);
        CHECK(raft_fixture_time(&c.f) - start < 1400);
        printf("silent leader: the first follower to time out won %llu ms after "
               "the other's last heartbeat\n",
               (unsigned long long)(raft_fixture_time(&c.f) - start));
    } else {
        CHECK(l == N || raft_fixture_time(&c.f) - start >= 1900);
        printf("silent leader without the rule: no leader before the later "
               "timeout (1,900 ms)\n");
    }
    teardown(&c);
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    (void)result;
    (void)status;
    free(req);
}

/* Server 2 (id 3, ranked second) has an entry server 1 (id 2, ranked
 * first) lacks: the first is denied, the second's attempt wins. */
static void lagging(void)
{
    struct cluster c;
    setup(&c);
    raft_term term = raft_current_term(raft_fixture_get(&c.f, 0));
    raft_fixture_disconnect(&c.f, 0, 1);
    struct raft_apply *req = calloc(1, sizeof *req);
    struct raft_buffer buf = {.base = raft_malloc(8), .len = 8};
    CHECK(req != NULL && buf.base != NULL);
    memset(buf.base, 0, 8);
    CHECK(raft_apply(raft_fixture_get(&c.f, 0), req, &buf, 1, apply_cb) == 0);
    raft_index last = raft_last_index(raft_fixture_get(&c.f, 0));
    CHECK(raft_fixture_step_until_applied(&c.f, 2, last, 500));
    CHECK(raft_last_index(raft_fixture_get(&c.f, 2)) == last);
    CHECK(raft_last_index(raft_fixture_get(&c.f, 1)) < last);
    raft_fixture_kill(&c.f, 0);
    raft_fixture_reconnect(&c.f, 0, 1);
    raft_time t0 = raft_fixture_time(&c.f);
    give_evidence(&c, 1, 1);
    give_evidence(&c, 2, 1);
    unsigned l = run_until_new_leader(&c, 0, 400);
    CHECK(l == 2);
    CHECK(raft_current_term(raft_fixture_get(&c.f, 2)) == term + 1);
    CHECK(c.ever_candidate[1]); /* the first-ranked one tried, denied */
    CHECK(c.crash[2].n_attempts >= 1);
    printf("lagging: the first-ranked survivor was denied, the one with the "
           "longer log won %llu ms after the kill\n",
           (unsigned long long)(raft_fixture_time(&c.f) - t0));
    teardown(&c);
}

static void not_the_leader(void)
{
    struct cluster c;
    setup(&c);
    struct raft *r = raft_fixture_get(&c.f, 1);
    raft_time now = raft_fixture_time(&c.f);
    CHECK(!glue__crash_evidence_lost(&c.crash[1], r, 3, now, NULL)); /* a follower */
    CHECK(!glue__crash_evidence_lost(&c.crash[1], r, 0, now, NULL));
    c.crash[1].enabled = false;
    CHECK(!glue__crash_evidence_lost(&c.crash[1], r, 1, now, NULL)); /* switched off */
    c.crash[1].enabled = true;
    /* The leader itself never acts on evidence. */
    CHECK(!glue__crash_evidence_lost(&c.crash[0], raft_fixture_get(&c.f, 0), 2, now, NULL));
    /* Armed once per crash: the second closed direction adds nothing
     * (the leader is forgotten at the first). */
    CHECK(glue__crash_evidence_lost(&c.crash[1], r, 1, now, NULL));
    CHECK(!glue__crash_evidence_lost(&c.crash[1], r, 1, now, NULL));
    CHECK(c.crash[1].n_armed == 1);
    /* The leader speaks again before the (second-ranked) first attempt:
     * cancelled, nothing moved. */
    struct raft *r2 = raft_fixture_get(&c.f, 2);
    CHECK(glue__crash_evidence_lost(&c.crash[2], r2, 1, now, NULL));
    CHECK(c.crash[2].due_ms == now + KYUFU_CRASH_ELECTION_STEP_MS);
    r2->election_timer_start = now + 1; /* as raft's reset at a heartbeat
                                           or a vote granted */
    CHECK(!glue__crash_evidence_poll(&c.crash[2], r2, now + KYUFU_CRASH_ELECTION_STEP_MS));
    CHECK(c.crash[2].n_cancelled == 1 && !c.crash[2].armed);
    CHECK(r2->election_timer_start == now + 1);
    printf("no evidence: a follower or no peer, switched off, a leader, twice, "
           "the leader heard again\n");
    teardown(&c);
}

int main(void)
{
    crash(true);
    crash(false);
    flap();
    silent(true);
    silent(false);
    lagging();
    not_the_leader();
    return 0;
}
