import type { Migration } from 'kysely';
import { tenantsAndVppTokens } from './0001-tenants-and-vpp-tokens.js';
import { syncAndLicenses } from './0002-sync-and-licenses.js';
import { vppTokenListIndexes } from './0003-vpp-token-list-indexes.js';
import { syncProgress } from './0004-sync-progress.js';
import { alerts } from './0005-alerts.js';
import { licenseAssignmentChunks } from './0006-license-assignment-chunks.js';
import { syncJobKindsAndTurns } from './0007-sync-job-kinds-and-turns.js';

/**
 * Every migration vppd knows, forward-only, applied in name order at start-up. Subsystems add their
 * own file (sync history, license data, ...) and one line here; a shipped migration is never edited.
 */
export const storageMigrations: Readonly<Record<string, Migration>> = {
  '0001_tenants_and_vpp_tokens': tenantsAndVppTokens,
  '0002_sync_and_licenses': syncAndLicenses,
  '0003_vpp_token_list_indexes': vppTokenListIndexes,
  '0004_sync_progress': syncProgress,
  '0005_alerts': alerts,
  '0006_license_assignment_chunks': licenseAssignmentChunks,
  '0007_sync_job_kinds_and_turns': syncJobKindsAndTurns,
};
