/** Who asked for a sync. */
export const syncTriggers = ['api', 'created', 'renewed', 'scheduled'] as const;
export type SyncTrigger = (typeof syncTriggers)[number];
