import type { Kysely, Migration } from 'kysely';
import type { EngineDdl } from '../engine.js';

/**
 * Apple's notifications (src/notifications): where each token's location was registered (the random
 * bearer token Apple sends back is kept only as a keyed hash, for the constant-time check, and sealed
 * with the token cipher), and every notification received, stored before it is acknowledged, unique
 * per token and `notificationId` so Apple's retries and duplicates are applied once.
 *
 * And the license alerts (src/alerts/license-alerts.ts) those fresher counts feed: thresholds per token
 * and app, the level each app was last alerted at (so an alert fires once per crossing, across
 * restarts and processes), and which snapshot state of each token was last evaluated.
 */
export const appleNotifications = (ddl: EngineDdl): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('apple_notification_registrations')
      // Random; the last segment of the notification URL (never the location's uId).
      .addColumn('id', ddl.text, (c) => c.primaryKey())
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('token_id', ddl.text, (c) => c.notNull().unique())
      .addColumn('location_uid', ddl.text, (c) => c.notNull())
      .addColumn('notification_url', ddl.text, (c) => c.notNull())
      /** Keyed HMAC-SHA256 of the notificationAuthToken (the token cipher's fingerprint), hex. */
      .addColumn('auth_token_hash', ddl.text, (c) => c.notNull())
      .addColumn('auth_token_ciphertext', ddl.text, (c) => c.notNull())
      .addColumn('auth_token_iv', ddl.text, (c) => c.notNull())
      .addColumn('auth_token_tag', ddl.text, (c) => c.notNull())
      /** The sToken the registration was made with: a renewal changes it and registers again. */
      .addColumn('stoken_fingerprint', ddl.text, (c) => c.notNull())
      /** `registered`, or `failed` with Apple's reason (e.g. 9728: the test notification failed). */
      .addColumn('status', ddl.text, (c) => c.notNull())
      .addColumn('failure_message', ddl.text)
      .addColumn('apple_error_number', 'integer')
      .addColumn('updated_at', ddl.timestamp, (c) => c.notNull())
      .addForeignKeyConstraint(
        'apple_notification_registrations_token_fkey',
        ['tenant_id', 'token_id'],
        'vpp_tokens',
        ['tenant_id', 'id'],
        (fk) => fk.onDelete('cascade'),
      )
      .execute();

    await db.schema
      .createTable('apple_notifications')
      .addColumn('token_id', ddl.text, (c) => c.notNull())
      .addColumn('notification_id', ddl.text, (c) => c.notNull())
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('notification_type', ddl.text, (c) => c.notNull())
      /** The envelope's `notification` object, as JSON. */
      .addColumn('payload', ddl.text, (c) => c.notNull())
      .addColumn('received_at', ddl.timestamp, (c) => c.notNull())
      .addColumn('processed_at', ddl.timestamp)
      /** `applied`, `ignored` or `syncRequested`, with a reason. */
      .addColumn('outcome', ddl.text)
      .addPrimaryKeyConstraint('apple_notifications_pkey', ['token_id', 'notification_id'])
      .addForeignKeyConstraint(
        'apple_notifications_token_fkey',
        ['tenant_id', 'token_id'],
        'vpp_tokens',
        ['tenant_id', 'id'],
        (fk) => fk.onDelete('cascade'),
      )
      .execute();
    await db.schema
      .createIndex('apple_notifications_pending_idx')
      .on('apple_notifications')
      .columns(['processed_at', 'received_at'])
      .execute();

    // Thresholds of licensesLow: one row per token (adam_id '') and optionally per app.
    await db.schema
      .createTable('alert_license_thresholds')
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('token_id', ddl.text, (c) => c.notNull())
      .addColumn('adam_id', ddl.text, (c) => c.notNull())
      /** `percent` of the total, or a `count` of available licenses. */
      .addColumn('kind', ddl.text, (c) => c.notNull())
      .addColumn('value', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('alert_license_thresholds_pkey', ['token_id', 'adam_id'])
      .addForeignKeyConstraint(
        'alert_license_thresholds_token_fkey',
        ['tenant_id', 'token_id'],
        'vpp_tokens',
        ['tenant_id', 'id'],
        (fk) => fk.onDelete('cascade'),
      )
      .execute();
    // The level each app of a token was last seen at; `seq` numbers its crossings (event ids).
    await db.schema
      .createTable('alert_license_levels')
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('token_id', ddl.text, (c) => c.notNull())
      .addColumn('adam_id', ddl.text, (c) => c.notNull())
      .addColumn('pricing_param', ddl.text, (c) => c.notNull())
      /** `ok`, `low`, `empty` (none available, none assigned) or `exhausted`. */
      .addColumn('level', ddl.text, (c) => c.notNull())
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('updated_at', ddl.timestamp, (c) => c.notNull())
      .addPrimaryKeyConstraint('alert_license_levels_pkey', ['token_id', 'adam_id', 'pricing_param'])
      .addForeignKeyConstraint(
        'alert_license_levels_token_fkey',
        ['tenant_id', 'token_id'],
        'vpp_tokens',
        ['tenant_id', 'id'],
        (fk) => fk.onDelete('cascade'),
      )
      .execute();
    // The snapshot state last evaluated per token: a new run or moved sums means evaluate again.
    await db.schema
      .createTable('alert_license_snapshots')
      .addColumn('token_id', ddl.text, (c) => c.primaryKey())
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('run_id', ddl.text, (c) => c.notNull())
      .addColumn('total_license_count', ddl.bigint, (c) => c.notNull())
      .addColumn('available_license_count', ddl.bigint, (c) => c.notNull())
      .addForeignKeyConstraint(
        'alert_license_snapshots_token_fkey',
        ['tenant_id', 'token_id'],
        'vpp_tokens',
        ['tenant_id', 'id'],
        (fk) => fk.onDelete('cascade'),
      )
      .execute();
  },
});
