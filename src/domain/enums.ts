import { defineGraphEnum } from './graph-enum.js';

// The six enums of Graph's VPP surface. Names and values are Microsoft's (checked against the CSDL in a
// test); the descriptions are ours, in English and in Russian.

/** `microsoft.graph.vppTokenSyncStatus`: where the last license sync of a token stands (closed enum). */
export const vppTokenSyncStatus = defineGraphEnum('vppTokenSyncStatus', [
  {
    name: 'none',
    value: 0,
    description: {
      en: 'Default status: no sync has run yet.',
      ru: 'Состояние по умолчанию: синхронизация ещё не выполнялась.',
    },
  },
  {
    name: 'inProgress',
    value: 1,
    description: {
      en: 'The last sync is in progress.',
      ru: 'Последняя синхронизация выполняется.',
    },
  },
  {
    name: 'completed',
    value: 2,
    description: {
      en: 'The last sync completed successfully.',
      ru: 'Последняя синхронизация успешно завершена.',
    },
  },
  {
    name: 'failed',
    value: 3,
    description: {
      en: 'The last sync failed.',
      ru: 'Последняя синхронизация завершилась с ошибкой.',
    },
  },
]);
export type VppTokenSyncStatus = (typeof vppTokenSyncStatus.names)[number];

/** `microsoft.graph.vppTokenState`: whether the token can be used with Apple (closed enum). */
export const vppTokenState = defineGraphEnum('vppTokenState', [
  {
    name: 'unknown',
    value: 0,
    description: {
      en: 'Default state: not yet checked with Apple.',
      ru: 'Состояние по умолчанию: токен ещё не проверен в Apple.',
    },
  },
  {
    name: 'valid',
    value: 1,
    description: { en: 'The token is valid.', ru: 'Токен действителен.' },
  },
  {
    name: 'expired',
    value: 2,
    description: { en: 'The token has expired.', ru: 'Срок действия токена истёк.' },
  },
  {
    name: 'invalid',
    value: 3,
    description: {
      en: 'The token is invalid (revoked by Apple or not accepted).',
      ru: 'Токен недействителен (отозван Apple или не принят).',
    },
  },
  {
    name: 'assignedToExternalMDM',
    value: 4,
    description: {
      en: 'The token is managed by another MDM service.',
      ru: 'Токеном управляет другая служба MDM.',
    },
  },
  {
    name: 'duplicateLocationId',
    value: 5,
    versions: ['beta'],
    fallback: 'invalid',
    description: {
      en: 'Another token of the same tenant already holds this Apple location.',
      ru: 'Это расположение Apple уже занято другим токеном того же клиента.',
    },
  },
]);
export type VppTokenState = (typeof vppTokenState.names)[number];

/** `microsoft.graph.vppTokenAccountType`: the Apple program the token belongs to (closed enum). */
export const vppTokenAccountType = defineGraphEnum('vppTokenAccountType', [
  {
    name: 'business',
    value: 0,
    description: {
      en: 'Apple Business Manager (volume purchase for business).',
      ru: 'Apple Business Manager (корпоративные закупки для бизнеса).',
    },
  },
  {
    name: 'education',
    value: 1,
    description: {
      en: 'Apple School Manager (volume purchase for education).',
      ru: 'Apple School Manager (корпоративные закупки для образования).',
    },
  },
]);
export type VppTokenAccountType = (typeof vppTokenAccountType.names)[number];

/** `microsoft.graph.vppTokenActionFailureReason`: why an action on a token failed (closed enum). */
export const vppTokenActionFailureReason = defineGraphEnum('vppTokenActionFailureReason', [
  {
    name: 'none',
    value: 0,
    description: { en: 'No failure.', ru: 'Ошибки нет.' },
  },
  {
    name: 'appleFailure',
    value: 1,
    description: {
      en: "Apple's service reported an error.",
      ru: 'Служба Apple сообщила об ошибке.',
    },
  },
  {
    name: 'internalError',
    value: 2,
    description: { en: 'An internal error occurred.', ru: 'Произошла внутренняя ошибка.' },
  },
  {
    name: 'expiredVppToken',
    value: 3,
    description: { en: 'The VPP token has expired.', ru: 'Срок действия токена VPP истёк.' },
  },
  {
    name: 'expiredApplePushNotificationCertificate',
    value: 4,
    description: {
      en: 'The Apple Push Notification service certificate has expired.',
      ru: 'Срок действия сертификата службы push-уведомлений Apple (APNs) истёк.',
    },
  },
]);
export type VppTokenActionFailureReason = (typeof vppTokenActionFailureReason.names)[number];

/** `microsoft.graph.actionState`: progress of an action such as `syncLicenses` (closed enum). */
export const actionState = defineGraphEnum('actionState', [
  {
    name: 'none',
    value: 0,
    description: { en: 'No action has run.', ru: 'Действие не выполнялось.' },
  },
  {
    name: 'pending',
    value: 1,
    description: {
      en: 'The action is waiting to run.',
      ru: 'Действие ожидает выполнения.',
    },
  },
  {
    name: 'canceled',
    value: 2,
    description: { en: 'The action was canceled.', ru: 'Действие отменено.' },
  },
  {
    name: 'active',
    value: 3,
    description: { en: 'The action is running.', ru: 'Действие выполняется.' },
  },
  {
    name: 'done',
    value: 4,
    description: {
      en: 'The action completed without errors.',
      ru: 'Действие завершено без ошибок.',
    },
  },
  {
    name: 'failed',
    value: 5,
    description: { en: 'The action failed.', ru: 'Действие завершилось с ошибкой.' },
  },
  {
    name: 'notSupported',
    value: 6,
    description: { en: 'The action is not supported.', ru: 'Действие не поддерживается.' },
  },
]);
export type ActionState = (typeof actionState.names)[number];

/** `microsoft.graph.appleDeviceDeliveryProtocol`: how apps reach devices (evolvable enum). */
export const appleDeviceDeliveryProtocol = defineGraphEnum('appleDeviceDeliveryProtocol', [
  {
    name: 'default',
    value: 0,
    description: {
      en: 'Default: the service chooses the delivery protocol.',
      ru: 'По умолчанию: протокол доставки выбирает служба.',
    },
  },
  {
    name: 'mobileDeviceManagement',
    value: 1,
    description: {
      en: 'Apps are delivered with MDM commands.',
      ru: 'Приложения доставляются командами MDM.',
    },
  },
  {
    name: 'declarativeDeviceManagement',
    value: 2,
    description: {
      en: 'Apps are delivered with declarative device management (DDM).',
      ru: 'Приложения доставляются с помощью декларативного управления устройствами (DDM).',
    },
  },
  {
    name: 'unknownFutureValue',
    value: 3,
    description: {
      en: 'Sentinel of the evolvable enum; not a real value.',
      ru: 'Служебное значение расширяемого перечисления; не является настоящим значением.',
    },
  },
]);
export type AppleDeviceDeliveryProtocol = (typeof appleDeviceDeliveryProtocol.names)[number];

/** Every enum of the VPP surface, by Graph type name. */
export const vppEnums = {
  vppTokenSyncStatus,
  vppTokenState,
  vppTokenAccountType,
  vppTokenActionFailureReason,
  actionState,
  appleDeviceDeliveryProtocol,
} as const;
export type VppEnumName = keyof typeof vppEnums;
