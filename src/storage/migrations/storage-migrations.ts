import type { Migration } from 'kysely';
import type { EngineDdl } from '../engine.js';
import { tenantsAndVppTokens } from './0001-tenants-and-vpp-tokens.js';
import { syncAndLicenses } from './0002-sync-and-licenses.js';
import { vppTokenListIndexes } from './0003-vpp-token-list-indexes.js';
import { syncProgress } from './0004-sync-progress.js';
import { alerts } from './0005-alerts.js';
import { licenseAssignmentChunks } from './0006-license-assignment-chunks.js';
import { syncJobKindsAndTurns } from './0007-sync-job-kinds-and-turns.js';
import { events } from './0008-events.js';
import { appleRate } from './0009-apple-rate.js';
import { licenseOperations } from './0010-license-operations.js';
import { appleNotifications } from './0011-apple-notifications.js';
import { notificationFollowUp } from './0012-notification-follow-up.js';
import { deltaSyncs } from './0013-delta-syncs.js';
import { tokenEventIndex } from './0014-token-event-index.js';
import { chunkHeldIndex } from './0015-chunk-held-index.js';

/**
 * Every migration vppd knows, forward-only, applied in name order at start-up, with the column types
 * of the engine that runs them. Subsystems add their own file (sync history, license data, ...) and
 * one line here; a shipped migration never changes what it writes.
 */
export function storageMigrations(ddl: EngineDdl): Readonly<Record<string, Migration>> {
  return {
    '0001_tenants_and_vpp_tokens': tenantsAndVppTokens(ddl),
    '0002_sync_and_licenses': syncAndLicenses(ddl),
    '0003_vpp_token_list_indexes': vppTokenListIndexes,
    '0004_sync_progress': syncProgress(ddl),
    '0005_alerts': alerts(ddl),
    '0006_license_assignment_chunks': licenseAssignmentChunks(ddl),
    '0007_sync_job_kinds_and_turns': syncJobKindsAndTurns(ddl),
    '0008_events': events(ddl),
    '0009_apple_rate': appleRate(ddl),
    '0010_license_operations': licenseOperations(ddl),
    '0011_apple_notifications': appleNotifications(ddl),
    '0012_notification_follow_up': notificationFollowUp(ddl),
    '0013_delta_syncs': deltaSyncs(ddl),
    '0014_token_event_index': tokenEventIndex,
    '0015_chunk_held_index': chunkHeldIndex,
  };
}
