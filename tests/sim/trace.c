/* kyufu simulation: the event trace (KYUFU_SIM_EVENTS=FILE, or stderr).  One line per
 * tick, message received and message sent at the fixture's edge (below
 * the stall layer), with the server's raft state after it: two runs of
 * the same seeds diff to the first event that went another way.  Only
 * values, never addresses. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

FILE *sim_events;

void sim_trace_open(void)
{
    const char *path = getenv("KYUFU_SIM_EVENTS");
    if (path == NULL) {
        return;
    }
    if (strcmp(path, "stderr") == 0) {
        /* Unbuffered: no stdio buffer on the heap, whose layout the
         * trace should disturb as little as possible. */
        sim_events = stderr;
        return;
    }
    sim_events = fopen(path, "w");
    if (sim_events == NULL) {
        perror(path);
        exit(2);
    }
}

static void message(FILE *o, const struct raft_message *m)
{
    fprintf(o, " type %d peer %llu", m->type,
            (unsigned long long)m->server_id);
    switch (m->type) {
        case RAFT_APPEND_ENTRIES: {
            const struct raft_append_entries *a = &m->append_entries;
            fprintf(o, " term %llu prev %llu/%llu commit %llu n %u",
                    (unsigned long long)a->term,
                    (unsigned long long)a->prev_log_index,
                    (unsigned long long)a->prev_log_term,
                    (unsigned long long)a->leader_commit, a->n_entries);
            for (unsigned k = 0; k < a->n_entries; k++) {
                fprintf(o, " e%llu:%d:%zu", (unsigned long long)a->entries[k].term,
                        a->entries[k].type, a->entries[k].buf.len);
            }
            break;
        }
        case RAFT_APPEND_ENTRIES_RESULT: {
            const struct raft_append_entries_result *a =
                &m->append_entries_result;
            fprintf(o, " term %llu rejected %llu last %llu features %llu",
                    (unsigned long long)a->term,
                    (unsigned long long)a->rejected,
                    (unsigned long long)a->last_log_index,
                    (unsigned long long)a->features);
            break;
        }
        case RAFT_REQUEST_VOTE: {
            const struct raft_request_vote *a = &m->request_vote;
            fprintf(o, " term %llu cand %llu last %llu/%llu dis %d pre %d",
                    (unsigned long long)a->term,
                    (unsigned long long)a->candidate_id,
                    (unsigned long long)a->last_log_index,
                    (unsigned long long)a->last_log_term,
                    (int)a->disrupt_leader, (int)a->pre_vote);
            break;
        }
        case RAFT_REQUEST_VOTE_RESULT: {
            const struct raft_request_vote_result *a = &m->request_vote_result;
            fprintf(o, " term %llu granted %d pre %d",
                    (unsigned long long)a->term, (int)a->vote_granted,
                    (int)a->pre_vote);
            break;
        }
        case RAFT_INSTALL_SNAPSHOT: {
            const struct raft_install_snapshot *a = &m->install_snapshot;
            fprintf(o, " term %llu last %llu/%llu conf %llu bytes %zu",
                    (unsigned long long)a->term,
                    (unsigned long long)a->last_index,
                    (unsigned long long)a->last_term,
                    (unsigned long long)a->conf_index, a->data.len);
            break;
        }
        case RAFT_TIMEOUT_NOW: {
            const struct raft_timeout_now *a = &m->timeout_now;
            fprintf(o, " term %llu last %llu/%llu",
                    (unsigned long long)a->term,
                    (unsigned long long)a->last_log_index,
                    (unsigned long long)a->last_log_term);
            break;
        }
        default:
            break;
    }
}

void sim_trace(struct sim *s, const char *what, struct raft_io *io,
               const struct raft_message *m)
{
    struct raft *r = io->data;
    if (sim_events == NULL) {
        return;
    }
    fprintf(sim_events, "%" PRIu64 " %llu s%llu %s", s->seed,
            (unsigned long long)raft_fixture_time(&s->f),
            (unsigned long long)r->id, what);
    if (m != NULL) {
        message(sim_events, m);
    }
    fprintf(sim_events, " | %s t%llu last %llu commit %llu applied %llu "
                        "stored %llu rng %" PRIx64 "\n",
            raft_state_name((int)raft_state(r)),
            (unsigned long long)raft_current_term(r),
            (unsigned long long)raft_last_index(r),
            (unsigned long long)raft_commit_index(r),
            (unsigned long long)raft_last_applied(r),
            (unsigned long long)r->last_stored, s->rng.s);
}
