import type { Kysely, Migration } from 'kysely';
import type { EngineDdl } from '../engine.js';

/**
 * What Apple's notifications finish (src/notifications/notification-processor.ts):
 * - `license_operation_batches.event_id` indexed: an `ASSET_MANAGEMENT` notification names the eventId
 *   of the batch it ends, looked up once per notification.
 * - `alert_license_snapshots` dropped: license alerts find the tokens to evaluate in the event log
 *   (`event_cursors` row `licenseAlerts`) instead of comparing every snapshot with its last-seen copy.
 */
export const notificationFollowUp = (_ddl: EngineDdl): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema
      .createIndex('license_operation_batches_event_idx')
      .on('license_operation_batches')
      .column('event_id')
      .execute();
    await db.schema.dropTable('alert_license_snapshots').execute();
  },
});
