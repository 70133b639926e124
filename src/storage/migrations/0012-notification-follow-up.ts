import type { Kysely, Migration } from 'kysely';
import type { EngineDdl } from '../engine.js';

/**
 * What Apple's notifications finish (src/notifications/notification-processor.ts):
 * - `license_operation_batches.event_id` indexed: an `ASSET_MANAGEMENT` notification names the eventId
 *   of the batch it ends, looked up once per notification.
 */
export const notificationFollowUp = (_ddl: EngineDdl): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema
      .createIndex('license_operation_batches_event_idx')
      .on('license_operation_batches')
      .column('event_id')
      .execute();
  },
});
