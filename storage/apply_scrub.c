/* ScrubMark (issue 13; docs/scrub.md): the leader's periodic mark at which
 * every replica digests its state and compares it with the other voters'
 * (node/scrub.c).
 *
 * Applying it writes nothing of its own: the entry's commit records the
 * applied index (and, as for every leader-stamped entry, the availability
 * ledger's stamp), identically on every replica.  The handler only notes
 * the index for kyufu_storage_take_scrub_mark, outside any transaction: a
 * batch that is abandoned (MAP_FULL, then applied again) notes the same
 * index again, and any other error stops the node. */
#include "internal.h"

int kyufu_storage__scrub_mark(struct kyufu_storage__cmd *c)
{
    c->s->scrub_mark = c->index;
    return 0;
}

uint64_t kyufu_storage_take_scrub_mark(struct kyufu_storage *s)
{
    uint64_t index = s->scrub_mark;
    s->scrub_mark = 0;
    return index;
}
