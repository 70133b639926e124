/** Who asked for a sync. */
export const syncTriggers = ['api', 'created', 'renewed', 'scheduled', 'notification'] as const;
export type SyncTrigger = (typeof syncTriggers)[number];

/**
 * What a job does: a full sync of the token, a delta sync (the assignments Apple added since the
 * snapshot's versionId, merged into it; a sync like any other for `lastSyncStatus`), or only a refresh
 * of its asset counts (syncLicenseCounts).
 */
export const syncJobKinds = ['licenses', 'licenseCounts', 'delta'] as const;
export type SyncJobKind = (typeof syncJobKinds)[number];
