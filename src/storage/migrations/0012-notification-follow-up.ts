import type { Kysely, Migration } from 'kysely';
import type { EngineDdl } from '../engine.js';

/**
 * What Apple's notifications finish (src/notifications/notification-processor.ts):
 * - `license_operation_batches.event_id` indexed: an `ASSET_MANAGEMENT` notification names the eventId
 *   of the batch it ends, looked up once per notification.
 * - `license_snapshots.counts_read_started_at` / `counts_read_finished_at`: when the last refresh of
 *   asset counts alone (a `licenseCounts` job, an operation's follow-up) began and ended reading Apple's
 *   `GET /assets`. With the run's start and the snapshot's commit they place an `ASSET_COUNT`
 *   notification before, during or after the read its counts came from (docs/apple.md, "Notifications").
 * - `alert_license_snapshots` dropped: license alerts find the tokens to evaluate in the event log
 *   (`event_cursors` row `licenseAlerts`) instead of comparing every snapshot with its last-seen copy.
 */
export const notificationFollowUp = (ddl: EngineDdl): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('license_snapshots')
      .addColumn('counts_read_started_at', ddl.timestamp)
      .execute();
    await db.schema
      .alterTable('license_snapshots')
      .addColumn('counts_read_finished_at', ddl.timestamp)
      .execute();
    await db.schema
      .createIndex('license_operation_batches_event_idx')
      .on('license_operation_batches')
      .column('event_id')
      .execute();
    await db.schema.dropTable('alert_license_snapshots').execute();
  },
});
