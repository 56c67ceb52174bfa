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
 * A second 0.22.1 bug feeds the first: a follower that receives a batch
 * of entries marks each configuration entry in it uncommitted at the index
 * of the batch's first new entry (replication.c replicationAppend passes
 * `index`, not `index + i`; the leader's client.c gets it right).  Then
 * configuration_uncommitted_index names a command entry, or an earlier
 * configuration entry than the one in force, and is cleared late or never.
 * And a follower may hold a second configuration entry while the first is
 * uncommitted (the leader committed it, the follower has not heard yet):
 * the first's RAFT_CONFIGURATION event then does not move the committed
 * configuration, and a rollback of the second restores one older still.
 *
 * - glue__conf_cut: before raft sees a received AppendEntries, cut it
 *   before its first configuration entry unless that entry comes first
 *   and no other configuration entry is uncommitted here, and then
 *   before its second.  When it cuts for an uncommitted one (u) that the
 *   message proves committed (a later configuration entry past a prev at
 *   or above u), it raises the message's commit index to u.  The follower
 *   stores and acknowledges what precedes it; the leader's next message
 *   is rejected or starts after it, and it sends the entry again, first
 *   in its message; the follower takes it once u is committed here.  A configuration entry therefore always lands at the
 *   index raft marks, one at a time.  Costs a round trip or two per
 *   membership change.
 * - glue__conf_snapshot_ok: whether a snapshot taken now records the
 *   configuration in force at raft's applied index; fsm.c refuses the
 *   snapshot otherwise (legacy asks again after a later apply).
 * - glue__conf_repair: outside raft's event handling (the glue's poll),
 *   a configuration entry marked uncommitted at or below the applied index
 *   is committed (applied entries are); mark it so, as raft's own
 *   replicationApplyConfigurationChange would have.  Reached by a node
 *   restarted from a snapshot written before these rules existed, or when
 *   raft's event handling stopped at an error with RAFT_CONFIGURATION
 *   events still queued (legacy.c LegacyForwardToRaftIo). */
#ifndef KYUFU_RAFT_GLUE_CONF_TRACK_H
#define KYUFU_RAFT_GLUE_CONF_TRACK_H

#include <raft.h>
#include <stdbool.h>

bool glue__conf_snapshot_ok(const struct raft *r);

/* m: a message raft is about to receive (any type; only AppendEntries
 * with entries is changed).  Whether it was cut.  Entries dropped are
 * freed as raft would (one batch per message: raft_uv's layout; a message
 * of several batches is left alone and counted by the caller). */
enum glue_conf_cut { GLUE_CONF_KEPT, GLUE_CONF_CUT, GLUE_CONF_UNCUTTABLE };
enum glue_conf_cut glue__conf_cut(const struct raft *r, struct raft_message *m);

/* 0: nothing to do; 1: repaired (the index it marked committed is in
 * *index); RAFT_NOMEM: nothing changed. */
int glue__conf_repair(struct raft *r, raft_index *index);

#endif /* KYUFU_RAFT_GLUE_CONF_TRACK_H */
