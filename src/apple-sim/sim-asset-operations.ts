import type { BaseAsset } from './sim-base-data.js';
import { SimApiError, type SimErrorEntry, simErrors } from './sim-errors.js';
import type { EventEndpoint, EventFault } from './sim-faults.js';
import type { SimEvent, SimEventFailure, SimLocation } from './sim-location.js';
import {
  invalid,
  parseBody,
  type SimRequest,
  type SimResponse,
  serviceLimits,
  stringList,
} from './sim-request.js';
import type { SimState } from './sim-state.js';

// Apple's license operations: `POST assets/associate`, `POST assets/disassociate` and the outcome of
// their events, `GET assets/eventStatus?eventId=` (also served under its older path `GET status`).
// An event is accepted at once and does its work when it completes: after `eventPolls` polls or
// `eventDelayMs` of the simulator's clock, whichever comes first (a location subscribed to
// ASSET_MANAGEMENT also has it completed by a timer after `eventDelayMs`, so the notification comes
// without any poll). Each event that changed data moves the location's versionId once, as one of
// Apple's batches does. A completed event sends ASSET_MANAGEMENT `{eventId, type, result, error,
// assignments}`: SUCCESS when nothing failed, else FAILURE with the first failure's error and the
// failed items (at most 100, Apple's limit per notification), each with its own error.

const jsonHeaders = { 'content-type': 'application/json;charset=UTF-8' };

/** Events an `eventPending` fault holds: they stay PENDING until the client gives up on them. */
const stuckEvents = new WeakSet<SimEvent>();

type Holder = { readonly serialNumber: string } | { readonly clientUserId: string };

/** Serves the call if it is one of the license operations; undefined for any other endpoint. */
export function routeAssetOperations(
  state: SimState,
  location: SimLocation,
  request: SimRequest,
  now: number,
): SimResponse | undefined {
  const { method, endpoint } = request;
  if (method === 'GET' && (endpoint === 'assets/eventStatus' || endpoint === 'status')) {
    return eventStatus(state, location, request.query, now);
  }
  if (method === 'POST' && (endpoint === 'assets/associate' || endpoint === 'assets/disassociate')) {
    const body = parseBody(request);
    const faults = state.faults(location.id).takeEventFaults(endpoint);
    const eventId = submit(location, body, now, endpoint, faults);
    if (location.notificationTypes?.includes('ASSET_MANAGEMENT')) {
      // A few ms late: a timer may fire a millisecond before the clock shows the delay has passed.
      state.notifier.after(state.eventDelayMs + 5, () =>
        settleEvents(state, location, state.clock().getTime()),
      );
    }
    return json(envelope(location, { eventId }));
  }
  return undefined;
}

/** Completes events whose time has come; bumps the versionId when their work changed data. */
export function settleEvents(state: SimState, location: SimLocation, now: number): void {
  for (const event of location.events.values()) {
    if (event.eventStatus === 'PENDING' && now - event.createdAt >= state.eventDelayMs)
      complete(state, location, event);
  }
}

function complete(state: SimState, location: SimLocation, event: SimEvent): void {
  if (stuckEvents.has(event)) return;
  const changesBefore = location.changeCount;
  location.completeEvent(event);
  // One new versionId per event that changed anything, as one batch of Apple's.
  if (location.changeCount !== changesBefore) location.bumpVersion();
  if (event.eventType === 'REVOKE') return;
  const [first] = event.failures;
  state.notifier.notify(location, 'ASSET_MANAGEMENT', {
    eventId: event.eventId,
    type: event.eventType,
    result: first === undefined ? 'SUCCESS' : 'FAILURE',
    ...(first === undefined
      ? {}
      : {
          error: { errorNumber: first.errorNumber, errorMessage: first.errorMessage },
          assignments: event.failures.slice(0, 100),
        }),
  });
}

function json(value: unknown): SimResponse {
  return { status: 200, headers: jsonHeaders, body: JSON.stringify(value) };
}

function envelope(location: SimLocation, fields: Record<string, unknown>): Record<string, unknown> {
  return { ...fields, tokenExpirationDate: location.tokenExpirationDate, uId: location.uId };
}

function eventStatus(
  state: SimState,
  location: SimLocation,
  query: URLSearchParams,
  now: number,
): SimResponse {
  const eventId = query.get('eventId');
  if (eventId === null || eventId === '') throw invalid('eventId is required');
  const event = location.events.get(eventId);
  if (event === undefined) throw new SimApiError(simErrors.unknownEvent);
  if (event.eventStatus === 'PENDING') {
    event.polls += 1;
    // The first `eventPolls` polls see PENDING; the next one finds the work done.
    if (event.polls > state.eventPolls || now - event.createdAt >= state.eventDelayMs)
      complete(state, location, event);
  }
  return json(
    envelope(location, {
      eventId: event.eventId,
      eventStatus: event.eventStatus,
      eventType: event.eventType,
      failures: event.failures,
      numCompleted: event.numCompleted,
      numRequested: event.numRequested,
    }),
  );
}

function submit(
  location: SimLocation,
  body: Record<string, unknown>,
  now: number,
  endpoint: EventEndpoint,
  faults: readonly EventFault[],
): string {
  const eventType = endpoint === 'assets/associate' ? 'ASSOCIATE' : 'DISASSOCIATE';
  const limits = serviceLimits(15);
  if (!Array.isArray(body.assets) || body.assets.length === 0)
    throw invalid('assets must be a non-empty list');
  if (body.assets.length > limits.maxAssets!)
    throw invalid(`assets has more than ${limits.maxAssets} entries`);
  const assets = body.assets.map((a: unknown) => {
    const asset = a as Record<string, unknown> | null;
    if (typeof asset?.adamId !== 'string' || typeof asset.pricingParam !== 'string') {
      throw invalid('each asset needs adamId and pricingParam');
    }
    return { adamId: asset.adamId, pricingParam: asset.pricingParam };
  });
  const serialNumbers = stringList(body.serialNumbers, 'serialNumbers', limits.maxSerialNumbers!);
  const clientUserIds = stringList(body.clientUserIds, 'clientUserIds', limits.maxClientUserIds!);
  if (serialNumbers.length > 0 && clientUserIds.length > 0) {
    throw invalid('give serialNumbers or clientUserIds, not both');
  }
  if (serialNumbers.length + clientUserIds.length === 0) {
    throw invalid('serialNumbers or clientUserIds must list at least one entry');
  }
  const holders: Holder[] = [
    ...serialNumbers.map((serialNumber) => ({ serialNumber })),
    ...clientUserIds.map((clientUserId) => ({ clientUserId })),
  ];
  const scripted = faults.filter((f) => f.type === 'eventFailure');
  const event = location.createEvent(eventType, assets.length * holders.length, now, () => {
    let completed = 0;
    const failures: SimEventFailure[] = [];
    for (const ref of assets) {
      const asset = location.findAsset(ref.adamId, ref.pricingParam);
      for (const holder of holders) {
        const fail = (entry: Pick<SimErrorEntry, 'errorNumber' | 'errorMessage'>) =>
          failures.push({
            ...ref,
            ...holder,
            errorNumber: entry.errorNumber,
            errorMessage: entry.errorMessage,
          });
        const fault = scripted.find((f) => scriptedFor(f, holder));
        if (fault !== undefined) {
          fail({
            errorNumber: fault.errorNumber,
            errorMessage: fault.errorMessage ?? `Error ${fault.errorNumber}`,
          });
        } else if (asset === undefined) {
          fail(simErrors.licenseNotFound);
        } else if (eventType === 'DISASSOCIATE') {
          if (location.removeAssignment(asset, holder)) completed++;
          else fail(simErrors.licenseNotFound);
        } else {
          const problem = associationProblem(location, asset, holder);
          if (problem !== undefined) fail(problem);
          else {
            location.addAssignment(asset, holder);
            completed++;
          }
        }
      }
    }
    return { completed, failures };
  });
  if (faults.some((f) => f.type === 'eventPending')) stuckEvents.add(event);
  return event.eventId;
}

function scriptedFor(fault: Extract<EventFault, { type: 'eventFailure' }>, holder: Holder): boolean {
  if (fault.serialNumbers === undefined && fault.clientUserIds === undefined) return true;
  if ('serialNumber' in holder) return fault.serialNumbers?.includes(holder.serialNumber) ?? false;
  return fault.clientUserIds?.includes(holder.clientUserId) ?? false;
}

function associationProblem(
  location: SimLocation,
  asset: BaseAsset,
  holder: Holder,
): SimErrorEntry | undefined {
  // Assigning what is already assigned succeeds without using a license, as Apple does.
  if (location.hasAssignment(asset, holder)) return undefined;
  // Apple's known quirk: a serial number it has never seen is accepted like any other and completes.
  if ('serialNumber' in holder && !asset.deviceAssignable) {
    return { ...simErrors.invalidArgument, errorMessage: 'This asset cannot be assigned to a device' };
  }
  if ('clientUserId' in holder && location.liveUser(holder.clientUserId) === undefined) {
    return simErrors.userNotFound;
  }
  if (location.availableCount(asset) < 1) return simErrors.notEnoughLicenses;
  return undefined;
}
