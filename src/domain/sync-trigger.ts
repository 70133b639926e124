/** Who asked for a sync. */
export const syncTriggers = ['api', 'created', 'renewed', 'scheduled', 'notification'] as const;
export type SyncTrigger = (typeof syncTriggers)[number];

/** What a job does: a full sync of the token, or only a refresh of its asset counts (syncLicenseCounts). */
export const syncJobKinds = ['licenses', 'licenseCounts'] as const;
export type SyncJobKind = (typeof syncJobKinds)[number];
