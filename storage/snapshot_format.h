/* The snapshot stream's framing (docs/snapshot-format.md), shared by the
 * writer (snapshot.c) and the restore (snapshot_restore.c).  Private to
 * storage/. */
#ifndef KYUFU_STORAGE_SNAPSHOT_FORMAT_H
#define KYUFU_STORAGE_SNAPSHOT_FORMAT_H

#define KYUFU_SNAP_MAGIC "KYUFUSN1"
#define KYUFU_SNAP_FORMAT_VERSION 1u
#define KYUFU_SNAP_HEADER_BYTES (8 + 4 + 4 + 8 + 8)
#define KYUFU_SNAP_END_MARK 0xFFu
#define KYUFU_SNAP_END_BYTES (1 + 8)
#define KYUFU_SNAP_TRAILER_BYTES 32
#define KYUFU_SNAP_RECORD_HEAD_BYTES (1 + 4 + 4)

#endif /* KYUFU_STORAGE_SNAPSHOT_FORMAT_H */
