/* libraft 0.22.1's tracking of the committed configuration, and the two
 * places where kyufu keeps it right (docs/raft.md, "Configuration entries
 * and snapshots").
 *
 * raft records in every snapshot the configuration it holds as committed
 * (configuration_committed, _index).  When one apply run commits several
 * configuration entries, legacy.c queues one RAFT_CONFIGURATION event per
 * entry and checks whether to take a snapshot after each, but only the
 * event of the newest entry (configuration_uncommitted_index) moves the
 * committed configuration: a snapshot taken between those events records
 * an older configuration than the one in force at its index.  After a
 * restart from it raft either marks the newest entry uncommitted for ever
 * (it lies below the snapshot, so it is never applied again, and every
 * raft_add/raft_assign/raft_remove fails with RAFT_CANTCHANGE) or, when
 * the log no longer holds that entry, runs with the older configuration.
 *
 * - glue__conf_snapshot_ok: whether a snapshot taken now records the
 *   configuration in force at raft's applied index; fsm.c refuses the
 *   snapshot otherwise (legacy asks again after a later apply).
 * - glue__conf_repair: outside raft's event handling (the glue's poll),
 *   a configuration entry marked uncommitted at or below the applied index
 *   is committed (applied entries are); mark it so, as raft's own
 *   replicationApplyConfigurationChange would have.  Only a node restarted
 *   from a snapshot written before the refusal existed gets there. */
#ifndef KYUFU_RAFT_GLUE_CONF_TRACK_H
#define KYUFU_RAFT_GLUE_CONF_TRACK_H

#include <raft.h>
#include <stdbool.h>

bool glue__conf_snapshot_ok(const struct raft *r);

/* 0: nothing to do; 1: repaired (the index it marked committed is in
 * *index); RAFT_NOMEM: nothing changed. */
int glue__conf_repair(struct raft *r, raft_index *index);

#endif /* KYUFU_RAFT_GLUE_CONF_TRACK_H */
