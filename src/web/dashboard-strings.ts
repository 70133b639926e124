import {
  type VppTokenState,
  type VppTokenSyncStatus,
  vppTokenActionFailureReason,
  vppTokenState,
  vppTokenSyncStatus,
} from '../domain/enums.js';
import type { Language } from '../domain/graph-enum.js';
import type { SyncFailureKind } from '../domain/sync-failure.js';

// Every word the dashboard shows, in both languages. Enum descriptions come from the domain (one source
// for the CLI, the docs and the page); badge labels and failure explanations are the page's own. The
// types make each table exhaustive: a new status, state or failure kind does not compile until it has
// words in both languages.

type Words = Readonly<Record<Language, string>>;

const statusLabels: Readonly<Record<VppTokenSyncStatus, Words>> = {
  none: { en: 'Not synced yet', ru: 'Не выполнялась' },
  inProgress: { en: 'In progress', ru: 'Выполняется' },
  completed: { en: 'Completed', ru: 'Завершена' },
  failed: { en: 'Failed', ru: 'Ошибка' },
};

const stateLabels: Readonly<Record<VppTokenState, Words>> = {
  unknown: { en: 'Unknown', ru: 'Неизвестно' },
  valid: { en: 'Valid', ru: 'Действителен' },
  expired: { en: 'Expired', ru: 'Истёк' },
  invalid: { en: 'Invalid', ru: 'Недействителен' },
  assignedToExternalMDM: { en: 'Another MDM', ru: 'Другая MDM' },
  duplicateLocationId: { en: 'Duplicate location', ru: 'Повторное расположение' },
};

const failureKinds: Readonly<Record<SyncFailureKind, Words>> = {
  expired: {
    en: 'The token has expired: download a new one from Apple Business (or School) Manager and renew.',
    ru: 'Срок действия токена истёк: скачайте новый в Apple Business (или School) Manager и обновите токен.',
  },
  revoked: {
    en: 'Apple revoked the token (a newer one was downloaded or the account changed): renew it.',
    ru: 'Apple отозвала токен (скачан более новый или изменилась учётная запись): обновите токен.',
  },
  invalidToken: {
    en: 'Apple does not accept the token: upload it again or renew it.',
    ru: 'Apple не принимает токен: загрузите его заново или обновите.',
  },
  externalMdm: {
    en: 'Another MDM server manages this location: allow vppd to take over the token to sync it.',
    ru: 'Этим расположением управляет другой сервер MDM: разрешите vppd забрать токен, чтобы синхронизировать его.',
  },
  duplicateLocation: {
    en: 'Another token of this tenant already holds the same Apple location: delete one of them.',
    ru: 'Это расположение Apple уже занято другим токеном этого клиента: удалите один из них.',
  },
  rateLimitExhausted: {
    en: 'Apple kept limiting the request rate; the next sync tries again.',
    ru: 'Apple продолжала ограничивать частоту запросов; следующая синхронизация повторит попытку.',
  },
  appleUnavailable: {
    en: "Apple's service was unavailable; the next sync tries again.",
    ru: 'Служба Apple была недоступна; следующая синхронизация повторит попытку.',
  },
  badRequest: {
    en: 'Apple rejected the request.',
    ru: 'Apple отклонила запрос.',
  },
  snapshotMoved: {
    en: "Apple's data kept changing during the sync; the next sync tries again.",
    ru: 'Данные Apple менялись во время синхронизации; следующая синхронизация повторит попытку.',
  },
  conflict: {
    en: 'The token changed while it was syncing; sync again.',
    ru: 'Токен изменился во время синхронизации; синхронизируйте ещё раз.',
  },
  internal: {
    en: 'vppd failed internally; see the server log.',
    ru: 'Внутренняя ошибка vppd; см. журнал сервера.',
  },
  interrupted: {
    en: 'The sync was interrupted (the server stopped) and its retry did not finish.',
    ru: 'Синхронизация прервана (сервер остановился), и повторная попытка не завершилась.',
  },
};

/** The page's own words (labels, buttons, messages), English and Russian. */
const ui = {
  title: { en: 'VPP tokens', ru: 'Токены VPP' },
  language: { en: 'Language', ru: 'Язык' },
  signInTitle: { en: 'Sign in', ru: 'Вход' },
  signInHelp: {
    en: 'Paste a bearer token for the Graph API (its tid claim is your tenant).',
    ru: 'Вставьте токен доступа (bearer) для Graph API (утверждение tid задаёт ваш клиент).',
  },
  bearerLabel: { en: 'Bearer token', ru: 'Токен доступа' },
  signIn: { en: 'Sign in', ru: 'Войти' },
  signOut: { en: 'Sign out', ru: 'Выйти' },
  signInFailed: { en: 'The server did not accept this token.', ru: 'Сервер не принял этот токен.' },
  demoSession: { en: 'Demo tenant', ru: 'Демо-клиент' },
  live: { en: 'Live', ru: 'В реальном времени' },
  reconnecting: { en: 'Reconnecting…', ru: 'Переподключение…' },
  filterStatus: { en: 'Sync status', ru: 'Статус синхронизации' },
  filterState: { en: 'Token state', ru: 'Состояние токена' },
  overviewStatus: { en: 'Tokens by sync', ru: 'По синхронизации' },
  utilization: {
    en: 'License utilization (assigned of total)',
    ru: 'Использование лицензий (назначено из всего)',
  },
  utilizationOf: { en: '{assigned} of {total} assigned', ru: 'назначено {assigned} из {total}' },
  topApps: { en: 'Most used apps', ru: 'Самые используемые приложения' },
  overviewState: { en: 'Tokens by state', ru: 'По состоянию' },
  expiringSoon: {
    en: 'Tokens expiring within 30 days: {n}',
    ru: 'Токенов, истекающих в ближайшие 30 дней: {n}',
  },
  filterSearch: { en: 'Search', ru: 'Поиск' },
  all: { en: 'All', ru: 'Все' },
  upload: { en: 'Upload .vpptoken', ru: 'Загрузить .vpptoken' },
  uploaded: {
    en: 'Token uploaded; its first sync has started.',
    ru: 'Токен загружен; первая синхронизация началась.',
  },
  shown: { en: '{shown} of {total} tokens', ru: 'Показано токенов: {shown} из {total}' },
  empty: { en: 'No tokens match.', ru: 'Нет подходящих токенов.' },
  noTokens: {
    en: 'No tokens yet: upload a .vpptoken file.',
    ru: 'Токенов пока нет: загрузите файл .vpptoken.',
  },
  colName: { en: 'Name', ru: 'Название' },
  colOrganization: { en: 'Organization', ru: 'Организация' },
  colLocation: { en: 'Location', ru: 'Расположение' },
  colCountry: { en: 'Country', ru: 'Страна' },
  colState: { en: 'State', ru: 'Состояние' },
  colStatus: { en: 'Last sync', ru: 'Последняя синхронизация' },
  colLastSuccess: { en: 'Last success', ru: 'Последний успех' },
  colExpires: { en: 'Expires', ru: 'Истекает' },
  colFailure: { en: 'Failure reason', ru: 'Причина ошибки' },
  colActions: { en: 'Actions', ru: 'Действия' },
  sortBy: { en: 'Sort by {column}', ru: 'Сортировать: {column}' },
  syncNow: { en: 'Sync now', ru: 'Синхронизировать' },
  syncRequested: { en: 'Sync requested for {name}.', ru: 'Синхронизация запрошена: {name}.' },
  details: { en: 'Details', ru: 'Подробнее' },
  detailsOf: { en: 'Details of {name}', ru: 'Подробности: {name}' },
  never: { en: 'never', ru: 'никогда' },
  unnamed: { en: '(no name)', ru: '(без названия)' },
  expiresIn: { en: 'in {days} d', ru: 'через {days} дн.' },
  expiredAgo: { en: 'expired {days} d ago', ru: 'истёк {days} дн. назад' },
  expiresToday: { en: 'today', ru: 'сегодня' },
  progress: {
    en: '{phase}: {pages} pages, {records} records',
    ru: '{phase}: страниц {pages}, записей {records}',
  },
  queued: { en: 'queued', ru: 'в очереди' },
  close: { en: 'Close', ru: 'Закрыть' },
  rename: { en: 'Rename', ru: 'Переименовать' },
  renameLabel: { en: 'Display name', ru: 'Отображаемое имя' },
  save: { en: 'Save', ru: 'Сохранить' },
  cancel: { en: 'Cancel', ru: 'Отмена' },
  renew: { en: 'Renew with a .vpptoken', ru: 'Обновить файлом .vpptoken' },
  renewed: { en: 'Token renewed; it syncs again now.', ru: 'Токен обновлён; синхронизация запущена.' },
  renamed: { en: 'Renamed.', ru: 'Переименовано.' },
  delete: { en: 'Delete', ru: 'Удалить' },
  deleteConfirm: {
    en: 'Delete the token “{name}”? vppd forgets it and its license data; Apple keeps the licenses.',
    ru: 'Удалить токен «{name}»? vppd удалит его и данные о лицензиях; лицензии в Apple сохранятся.',
  },
  deleted: { en: 'Token deleted.', ru: 'Токен удалён.' },
  appleId: { en: 'Apple ID', ru: 'Apple ID' },
  accountType: { en: 'Account type', ru: 'Тип учётной записи' },
  tokenId: { en: 'Token id', ru: 'Идентификатор токена' },
  apps: { en: 'Apps', ru: 'Приложения' },
  appName: { en: 'App', ru: 'Приложение' },
  bundleId: { en: 'Bundle id', ru: 'Идентификатор пакета' },
  total: { en: 'Total', ru: 'Всего' },
  used: { en: 'Used', ru: 'Использовано' },
  available: { en: 'Available', ru: 'Доступно' },
  unlimited: { en: 'unlimited', ru: 'без ограничений' },
  noApps: { en: 'No apps in the last snapshot.', ru: 'В последнем снимке нет приложений.' },
  moreApps: { en: 'Show more apps', ru: 'Показать ещё' },
  history: { en: 'Sync history', ru: 'История синхронизаций' },
  started: { en: 'Started', ru: 'Начало' },
  duration: { en: 'Duration', ru: 'Длительность' },
  outcome: { en: 'Outcome', ru: 'Результат' },
  counts: { en: 'Assets / assignments', ru: 'Активы / назначения' },
  error: { en: 'Error', ru: 'Ошибка' },
  noHistory: { en: 'No sync has run yet.', ru: 'Синхронизаций ещё не было.' },
  outcomeRunning: { en: 'running', ru: 'выполняется' },
  historyChart: {
    en: 'Durations of the last {n} syncs, oldest first; {failed} failed; the longest took {longest}.',
    ru: 'Длительность последних синхронизаций ({n}), старые слева; с ошибкой: {failed}; самая долгая: {longest}.',
  },
  historyChartAxis: {
    en: 'bar height: duration (longest {longest})',
    ru: 'высота: длительность (макс. {longest})',
  },
  outcomeCompleted: { en: 'completed', ru: 'завершена' },
  outcomeFailed: { en: 'failed', ru: 'ошибка' },
  outcomeInterrupted: { en: 'interrupted', ru: 'прервана' },
  operations: { en: 'License operations', ru: 'Операции с лицензиями' },
  operationKind: { en: 'Operation', ru: 'Операция' },
  operationItems: { en: 'Requested / done / failed', ru: 'Запрошено / выполнено / ошибок' },
  appleErrors: { en: 'Apple errors', ru: 'Ошибки Apple' },
  noOperations: { en: 'No license operation yet.', ru: 'Операций с лицензиями ещё не было.' },
  kindAssociate: { en: 'assign', ru: 'назначение' },
  kindDisassociate: { en: 'release', ru: 'освобождение' },
  fromReclaim: { en: '{kind} (reclaim)', ru: '{kind} (возврат)' },
  opPending: { en: 'pending', ru: 'ожидает' },
  opRunning: { en: 'running', ru: 'выполняется' },
  opCompleted: { en: 'completed', ru: 'выполнена' },
  opFailed: { en: 'failed', ru: 'ошибка' },
  opPartiallyFailed: { en: 'partially failed', ru: 'частично с ошибками' },
  holders: { en: 'Holders', ru: 'Держатели' },
  holdersOf: { en: 'Holders: {app}', ru: 'Держатели: {app}' },
  holdersCount: { en: '{n} licenses assigned', ru: 'Назначено лицензий: {n}' },
  holderSerial: { en: 'device {id}', ru: 'устройство {id}' },
  holderUser: { en: 'user {id}', ru: 'пользователь {id}' },
  noHolders: { en: 'No license of this app is assigned.', ru: 'Лицензии этого приложения не назначены.' },
  moreHolders: { en: 'Show more holders', ru: 'Показать ещё' },
  release: { en: 'Release', ru: 'Освободить' },
  releaseOf: { en: 'Release: {holder}', ru: 'Освободить: {holder}' },
  releaseConfirm: {
    en: 'Release the license of “{app}” held by {holder}? Apple takes it back and it becomes available again.',
    ru: 'Освободить лицензию «{app}», назначенную: {holder}? Apple заберёт её, и она снова станет доступной.',
  },
  releaseStarted: { en: 'Releasing {holder}…', ru: 'Освобождение: {holder}…' },
  releaseDone: { en: 'Released: {holder} ({outcome}).', ru: 'Освобождено: {holder} ({outcome}).' },
  releaseFailed: {
    en: 'The release of {holder} did not complete ({outcome}): {message}',
    ru: 'Освобождение ({holder}) не выполнено ({outcome}): {message}',
  },
  usedOf: { en: '{used} of {total} used', ru: 'использовано {used} из {total}' },
  loading: { en: 'Loading…', ru: 'Загрузка…' },
  requestFailed: { en: 'The request failed: {message}', ru: 'Запрос не выполнен: {message}' },
  phaseClientConfig: { en: 'checking the token', ru: 'проверка токена' },
  phaseAssets: { en: 'assets', ru: 'активы' },
  phaseAssignments: { en: 'assignments', ru: 'назначения' },
  phaseMetadata: { en: 'app details', ru: 'сведения о приложениях' },
} satisfies Record<string, Words>;

/** What the page loads once: per language, its words and the enums' labels and descriptions. */
export type DashboardStrings = Readonly<Record<Language, LanguageStrings>>;

export interface LanguageStrings {
  readonly ui: Readonly<Record<keyof typeof ui, string>>;
  readonly status: Readonly<Record<VppTokenSyncStatus, { label: string; description: string }>>;
  readonly state: Readonly<Record<VppTokenState, { label: string; description: string }>>;
  readonly reason: Readonly<Record<string, string>>;
  readonly failure: Readonly<Record<SyncFailureKind, string>>;
}

/** Builds the page's strings for both languages (served as `/dashboard/strings.json`). */
export function dashboardStrings(): DashboardStrings {
  const build = (lang: Language): LanguageStrings => ({
    ui: Object.fromEntries(Object.entries(ui).map(([key, words]) => [key, words[lang]])) as Record<
      keyof typeof ui,
      string
    >,
    status: Object.fromEntries(
      vppTokenSyncStatus.members.map((m) => [
        m.name,
        { label: statusLabels[m.name][lang], description: m.description[lang] },
      ]),
    ) as LanguageStrings['status'],
    state: Object.fromEntries(
      vppTokenState.members.map((m) => [
        m.name,
        { label: stateLabels[m.name][lang], description: m.description[lang] },
      ]),
    ) as LanguageStrings['state'],
    reason: Object.fromEntries(vppTokenActionFailureReason.members.map((m) => [m.name, m.description[lang]])),
    failure: Object.fromEntries(
      Object.entries(failureKinds).map(([kind, words]) => [kind, words[lang]]),
    ) as LanguageStrings['failure'],
  });
  return { en: build('en'), ru: build('ru') };
}
