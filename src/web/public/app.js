// vppd dashboard: plain browser JavaScript, no framework, no build step. It talks to the same HTTP API as
// any Graph client (bearer token, /beta routes) and to vppd's own /vppd/v1 routes for what Graph lacks
// (the table with failure reasons and live progress, the sync history, the live event stream).
// Every value from the server is written with textContent: nothing from the API is parsed as HTML.

const graph = '/beta/deviceAppManagement';
const tokenKey = 'vppd.dashboard.token';
const langKey = 'vppd.dashboard.lang';
const unlimitedCount = 2147483647;
/** Holders listed per page in a token's details (the API pages with its own nextLink). */
const holdersPageSize = 20;

/** @type {Record<string, any>} */
let allStrings = {};
/** @type {any} */
let words = {};
let lang = 'en';
/** @type {string | null} */
let bearer = null;
let demo = false;
/** @type {Map<string, any>} */
const tokens = new Map();
/** @type {Map<string, { tr: HTMLTableRowElement, key: string }>} */
const rows = new Map();
const view = { sortKey: 'name', sortDir: 1, status: '', state: '', search: '' };
/**
 * The open token's details; `holders` is the app whose holders are shown (one at a time), kept across
 * reloads of the apps table so a release refreshes it in place.
 * @type {{ id: string | null, appsNext: string | null, lastStatus: string | null,
 *   holders: { appId: string, name: string } | null }}
 */
const detail = { id: null, appsNext: null, lastStatus: null, holders: null };
/** @type {AbortController | null} */
let stream = null;
let renderQueued = false;

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

// ---- words -------------------------------------------------------------------------------------

/** The page's word for `key`, with `{name}` placeholders filled. */
function t(/** @type {string} */ key, /** @type {Record<string, string | number>} */ values = {}) {
  const text = words.ui?.[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (/** @type {string} */ _, /** @type {string} */ name) =>
    String(values[name] ?? ''),
  );
}

function pickLanguage() {
  const saved = localStorage.getItem(langKey);
  if (saved === 'en' || saved === 'ru') return saved;
  for (const tag of navigator.languages ?? [navigator.language]) {
    const base = tag.toLowerCase().split('-')[0];
    if (base === 'ru' || base === 'en') return base;
  }
  return 'en';
}

function applyLanguage(/** @type {string} */ next) {
  lang = next;
  words = allStrings[lang];
  document.documentElement.lang = lang;
  /** @type {HTMLSelectElement} */ ($('lang')).value = lang;
  for (const el of document.querySelectorAll('[data-i18n]')) {
    el.textContent = t(/** @type {HTMLElement} */ (el).dataset.i18n ?? '');
  }
  document.title = `vppd — ${t('title')}`;
  fillFilter(/** @type {HTMLSelectElement} */ ($('filter-status')), words.status, view.status);
  fillFilter(/** @type {HTMLSelectElement} */ ($('filter-state')), words.state, view.state);
  renderHead();
  renderWho();
  setLive($('live').dataset.state ?? '');
  rows.clear();
  $('rows').replaceChildren();
  render();
  if (detail.id !== null && tokens.has(detail.id)) void openDetail(detail.id, false);
  if (bearer !== null) scheduleUtilization(0);
}

function fillFilter(
  /** @type {HTMLSelectElement} */ select,
  /** @type {Record<string, {label: string}>} */ members,
  /** @type {string} */ value,
) {
  const options = [new Option(t('all'), '')];
  for (const [name, member] of Object.entries(members)) options.push(new Option(member.label, name));
  select.replaceChildren(...options);
  select.value = value;
}

// ---- formatting --------------------------------------------------------------------------------

const dayMs = 86_400_000;

function relative(/** @type {string | null} */ iso) {
  if (iso === null) return t('never');
  const diff = Date.parse(iso) - Date.now();
  const abs = Math.abs(diff);
  const format = new Intl.RelativeTimeFormat(lang, { numeric: 'auto' });
  if (abs < 59_500) return format.format(Math.round(diff / 1000), 'second');
  if (abs < 3_570_000) return format.format(Math.round(diff / 60_000), 'minute');
  if (abs < dayMs - 1_800_000) return format.format(Math.round(diff / 3_600_000), 'hour');
  return format.format(Math.round(diff / dayMs), 'day');
}

function absolute(/** @type {string | null} */ iso) {
  if (iso === null) return '';
  return new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));
}

/** The expiry countdown and its colour level: 30, 14 and 5 days, then expired. */
function expiry(/** @type {string} */ iso) {
  const days = Math.floor((Date.parse(iso) - Date.now()) / dayMs);
  if (Date.parse(iso) <= Date.now()) {
    return { text: t('expiredAgo', { days: Math.max(0, -days - 1) }), level: 'expired' };
  }
  const text = days === 0 ? t('expiresToday') : t('expiresIn', { days });
  const level = days <= 5 ? '5' : days <= 14 ? '14' : days <= 30 ? '30' : '';
  return { text, level };
}

function phaseWord(/** @type {string | null} */ phase) {
  const key = phase === null ? '' : `phase${phase[0]?.toUpperCase()}${phase.slice(1)}`;
  return words.ui?.[key] ?? t('queued');
}

function nameOf(/** @type {any} */ token) {
  return token.displayName || token.organizationName || t('unnamed');
}

function count(/** @type {number | null | undefined} */ n) {
  if (n === null || n === undefined) return '—';
  return n >= unlimitedCount ? t('unlimited') : new Intl.NumberFormat(lang).format(n);
}

// ---- the API -----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(/** @type {number} */ status, /** @type {string} */ message) {
    super(message);
    this.status = status;
  }
}

/** Calls vppd with the bearer token; a non-2xx answer becomes an ApiError with the server's message. */
async function call(
  /** @type {string} */ method,
  /** @type {string} */ path,
  /** @type {unknown} */ body = undefined,
  /** @type {Record<string, string>} */ headers = {},
) {
  /** @type {Record<string, string>} */
  const all = { accept: 'application/json', authorization: `Bearer ${bearer}`, ...headers };
  if (body !== undefined) all['content-type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers: all,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  if (response.status === 204) return undefined;
  const text = await response.text();
  /** @type {any} */
  let json;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const message = json?.error?.message ?? `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return json;
}

const tokenPath = (/** @type {string} */ id) => `${graph}/vppTokens/${encodeURIComponent(id)}`;

// ---- messages ----------------------------------------------------------------------------------

let noticeTimer = 0;
function notice(/** @type {string} */ text) {
  $('notice').textContent = text;
  clearTimeout(noticeTimer);
  noticeTimer = window.setTimeout(() => {
    $('notice').textContent = '';
  }, 8000);
}

function showError(/** @type {string} */ where, /** @type {unknown} */ error) {
  const box = $(where);
  const message = error instanceof Error ? error.message : String(error);
  box.textContent = t('requestFailed', { message });
  box.hidden = false;
}

function clearError(/** @type {string} */ where) {
  $(where).hidden = true;
  $(where).textContent = '';
}

// ---- sign-in -----------------------------------------------------------------------------------

function tenantOf(/** @type {string} */ jwt) {
  try {
    const part = jwt.split('.')[1] ?? '';
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    return JSON.parse(json).tid ?? '';
  } catch {
    return '';
  }
}

/** Graph's permissions that allow writes (the server checks them again; this only hides what would be refused). */
const writePermissions = [
  'DeviceManagementServiceConfig.ReadWrite.All',
  'DeviceManagementApps.ReadWrite.All',
];

/**
 * Whether the bearer token carries a write permission (`roles` or `scp`). A token the page cannot read
 * counts as writable: the server's 403 message is shown then.
 */
function canWrite() {
  if (bearer === null) return false;
  try {
    const part = bearer.split('.')[1] ?? '';
    const claims = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/')));
    const granted = [
      ...(Array.isArray(claims.roles) ? claims.roles : []),
      ...(typeof claims.scp === 'string' ? claims.scp.split(' ') : []),
    ];
    return granted.some((p) => writePermissions.includes(p));
  } catch {
    return true;
  }
}

function renderWho() {
  const who = $('who');
  if (bearer === null) {
    who.textContent = '';
    return;
  }
  who.textContent = demo ? t('demoSession') : tenantOf(bearer);
}

async function signIn(/** @type {string} */ candidate, /** @type {boolean} */ fromDemo) {
  bearer = candidate;
  demo = fromDemo;
  try {
    const table = await call('GET', '/vppd/v1/dashboard/tokens');
    applyEvent({ type: 'snapshot', tokens: table.value });
  } catch (error) {
    bearer = null;
    throw error;
  }
  if (!fromDemo) sessionStorage.setItem(tokenKey, candidate);
  $('sign-in').hidden = true;
  $('tokens').hidden = false;
  $('sign-out').hidden = demo;
  renderWho();
  connect();
}

function signOut() {
  bearer = null;
  sessionStorage.removeItem(tokenKey);
  stream?.abort();
  stream = null;
  tokens.clear();
  rows.clear();
  $('rows').replaceChildren();
  $('tokens').hidden = true;
  $('sign-in').hidden = false;
  $('sign-out').hidden = true;
  setLive('');
  renderWho();
}

// ---- the live stream ---------------------------------------------------------------------------

function setLive(/** @type {string} */ state) {
  const live = $('live');
  live.dataset.state = state;
  live.textContent = state === 'live' ? t('live') : state === 'reconnecting' ? t('reconnecting') : '';
}

/**
 * Reads the server-sent events of `/vppd/v1/events` with fetch (EventSource cannot send the bearer
 * token); reconnects with a growing pause, and takes the snapshot each new connection starts with.
 */
function connect(/** @type {number} */ attempt = 0) {
  const controller = new AbortController();
  stream = controller;
  (async () => {
    let opened = false;
    try {
      const response = await fetch('/vppd/v1/events', {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${bearer}` },
        signal: controller.signal,
        cache: 'no-store',
      });
      if (response.status === 401) {
        signOut();
        return;
      }
      if (!response.ok || response.body === null) throw new Error(`events: ${response.status}`);
      opened = true;
      setLive('live');
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          handleBlock(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      console.warn('dashboard: event stream broke', error);
    }
    if (controller.signal.aborted || stream !== controller) return;
    setLive('reconnecting');
    const next = opened ? 0 : attempt + 1;
    window.setTimeout(
      () => {
        if (stream === controller) connect(next);
      },
      Math.min(15_000, 1000 * 2 ** next),
    );
  })();
}

function handleBlock(/** @type {string} */ block) {
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('data:')) data += line.slice(5).trimStart();
  }
  if (data === '') return;
  applyEvent(JSON.parse(data));
}

let utilizationTimer = 0;
/** Reloads the utilization chart soon (coalesced: at most once a second), and again every 30 s. */
function scheduleUtilization(/** @type {number} */ delay = 1000) {
  clearTimeout(utilizationTimer);
  utilizationTimer = window.setTimeout(() => void loadUtilization(), delay);
}

async function loadUtilization() {
  if (bearer === null) return;
  try {
    const data = await call('GET', '/vppd/v1/licenses/utilization');
    renderUtilization(data);
  } catch (error) {
    showError('alert', error);
  }
  scheduleUtilization(30_000);
}

/** Assigned of total licenses per token (horizontal SVG bars) and the most used apps. */
function renderUtilization(/** @type {any} */ data) {
  const figure = $('utilization');
  figure.hidden = data.tokens.length === 0;
  const width = 300;
  const rowsOut = data.tokens.map((/** @type {any} */ u) => {
    const token = tokens.get(u.tokenId);
    const row = document.createElement('div');
    row.className = 'utilization-row';
    const label = document.createElement('span');
    label.className = 'utilization-label';
    label.textContent = token === undefined ? u.tokenId : nameOf(token);
    const svg = document.createElementNS(svgNs, 'svg');
    svg.setAttribute('viewBox', `0 0 ${width} 12`);
    svg.setAttribute('role', 'img');
    const summary = t('utilizationOf', { assigned: count(u.assigned), total: count(u.total) });
    svg.setAttribute('aria-label', summary);
    const back = document.createElementNS(svgNs, 'rect');
    back.setAttribute('width', String(width));
    back.setAttribute('height', '12');
    back.setAttribute('class', 'utilization-total');
    const used = document.createElementNS(svgNs, 'rect');
    used.setAttribute('width', String(u.total > 0 ? (u.assigned / u.total) * width : 0));
    used.setAttribute('height', '12');
    used.setAttribute(
      'class',
      u.available === 0 && u.total > 0 ? 'utilization-used full' : 'utilization-used',
    );
    svg.append(back, used);
    const value = document.createElement('span');
    value.className = 'utilization-value';
    value.textContent = summary;
    row.append(label, svg, value);
    return row;
  });
  $('utilization-tokens').replaceChildren(...rowsOut);
  $('utilization-apps').replaceChildren(
    ...data.apps.map((/** @type {any} */ a) => {
      const li = document.createElement('li');
      const token = tokens.get(a.tokenId);
      li.textContent = `${a.name ?? a.adamId} — ${t('utilizationOf', { assigned: count(a.assigned), total: count(a.total) })}${token === undefined ? '' : ` (${nameOf(token)})`}`;
      return li;
    }),
  );
}

function applyEvent(/** @type {any} */ event) {
  if (event.type === 'snapshot') {
    tokens.clear();
    for (const token of event.tokens) tokens.set(token.id, token);
  } else if (event.type === 'upsert') {
    for (const token of event.tokens) tokens.set(token.id, token);
  } else if (event.type === 'remove') {
    for (const id of event.ids) tokens.delete(id);
  }
  scheduleRender();
  scheduleUtilization();
  if (detail.id !== null) refreshDetail();
}

// ---- the table ---------------------------------------------------------------------------------

const statusOrder = () => Object.keys(words.status ?? {});
const stateOrder = () => Object.keys(words.state ?? {});

/** Columns: header word, sort key (a comparable value), and how a cell shows a token. */
const columns = [
  { key: 'name', label: 'colName', value: (/** @type {any} */ x) => nameOf(x).toLowerCase() },
  {
    key: 'organization',
    label: 'colOrganization',
    value: (/** @type {any} */ x) => (x.organizationName ?? '').toLowerCase(),
  },
  {
    key: 'location',
    label: 'colLocation',
    value: (/** @type {any} */ x) => (x.locationName ?? '').toLowerCase(),
  },
  { key: 'country', label: 'colCountry', value: (/** @type {any} */ x) => x.countryOrRegion ?? '' },
  { key: 'state', label: 'colState', value: (/** @type {any} */ x) => stateOrder().indexOf(x.state) },
  {
    key: 'status',
    label: 'colStatus',
    value: (/** @type {any} */ x) => statusOrder().indexOf(x.lastSyncStatus),
  },
  {
    key: 'lastSuccess',
    label: 'colLastSuccess',
    // Instants, not text: Graph's dates carry only the fraction digits they have, so text order is not time order.
    value: (/** @type {any} */ x) =>
      x.lastSuccessDateTime ? Date.parse(x.lastSuccessDateTime) : Number.NEGATIVE_INFINITY,
  },
  {
    key: 'expires',
    label: 'colExpires',
    value: (/** @type {any} */ x) => Date.parse(x.expirationDateTime),
  },
  { key: 'failure', label: 'colFailure', value: (/** @type {any} */ x) => (x.failure ? x.failure.kind : '') },
  { key: 'actions', label: 'colActions', value: null },
];

function renderHead() {
  const cells = columns.map((column) => {
    const th = document.createElement('th');
    th.scope = 'col';
    if (column.value === null) {
      th.textContent = t(column.label);
      return th;
    }
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = t(column.label);
    button.title = t('sortBy', { column: t(column.label) });
    button.addEventListener('click', () => {
      view.sortDir = view.sortKey === column.key ? -view.sortDir : 1;
      view.sortKey = column.key;
      renderHead();
      render();
      /** @type {HTMLElement | null} */ (
        document.querySelector(`th[data-key="${column.key}"] button`)
      )?.focus();
    });
    th.dataset.key = column.key;
    if (view.sortKey === column.key)
      th.setAttribute('aria-sort', view.sortDir > 0 ? 'ascending' : 'descending');
    th.append(button);
    return th;
  });
  $('head-row').replaceChildren(...cells);
}

function visibleTokens() {
  const search = view.search.trim().toLowerCase();
  const column = columns.find((c) => c.key === view.sortKey) ?? columns[0];
  const value = column?.value ?? (() => '');
  const list = [...tokens.values()].filter(
    (x) =>
      (view.status === '' || x.lastSyncStatus === view.status) &&
      (view.state === '' || x.state === view.state) &&
      (search === '' ||
        [x.displayName, x.organizationName, x.locationName, x.appleId, x.countryOrRegion].some((v) =>
          (v ?? '').toLowerCase().includes(search),
        )),
  );
  list.sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    const order = va < vb ? -1 : va > vb ? 1 : 0;
    return order * view.sortDir || nameOf(a).localeCompare(nameOf(b), lang) || a.id.localeCompare(b.id);
  });
  return list;
}

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function render() {
  const list = visibleTokens();
  const body = $('rows');
  const wanted = list.map((token) => rowFor(token));
  // Reorder only when the order changed: moving a row would take the keyboard focus out of it.
  const current = [...body.children];
  if (current.length !== wanted.length || wanted.some((tr, i) => current[i] !== tr)) {
    const focused = document.activeElement;
    body.replaceChildren(...wanted);
    if (focused instanceof HTMLElement && body.contains(focused)) focused.focus();
  }
  for (const id of rows.keys()) if (!tokens.has(id)) rows.delete(id);
  $('count').textContent = t('shown', { shown: list.length, total: tokens.size });
  renderOverview();
  const empty = $('empty');
  empty.hidden = list.length > 0;
  empty.textContent = tokens.size === 0 ? t('noTokens') : t('empty');
}

/** Counts by sync status and by state (each a button that filters the table), and tokens expiring soon. */
function renderOverview() {
  const all = [...tokens.values()];
  const chips = (/** @type {'status' | 'state'} */ kind, /** @type {string} */ selectId) =>
    Object.entries(kind === 'status' ? words.status : words.state).map(([name, member]) => {
      const n = all.filter((x) => (kind === 'status' ? x.lastSyncStatus : x.state) === name).length;
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'chip badge';
      button.dataset.value = name;
      button.textContent = `${member.label} ${n}`;
      button.setAttribute('aria-pressed', String(view[kind] === name));
      button.disabled = n === 0 && view[kind] !== name;
      button.addEventListener('click', () => {
        view[kind] = view[kind] === name ? '' : name;
        /** @type {HTMLSelectElement} */ ($(selectId)).value = view[kind];
        render();
      });
      return button;
    });
  $('overview-status').replaceChildren(...chips('status', 'filter-status'));
  $('overview-state').replaceChildren(...chips('state', 'filter-state'));
  const soon = all.filter((x) => {
    const left = Date.parse(x.expirationDateTime) - Date.now();
    return left > 0 && left <= 30 * dayMs;
  }).length;
  $('overview-expiring').textContent = t('expiringSoon', { n: soon });
}

function rowFor(/** @type {any} */ token) {
  // Time moves the age and the countdown: the key includes the minute.
  const key = `${JSON.stringify(token)}|${Math.floor(Date.now() / 60_000)}`;
  let entry = rows.get(token.id);
  if (entry === undefined) {
    const tr = document.createElement('tr');
    tr.dataset.id = token.id;
    for (const column of columns) {
      const td = document.createElement('td');
      td.dataset.col = column.key;
      // One box per cell: on phones the cell is a line of "label: value", the value being this box.
      const value = document.createElement('div');
      value.className = 'value';
      td.append(value);
      tr.append(td);
    }
    entry = { tr, key: '' };
    rows.set(token.id, entry);
    fillRowStructure(entry.tr, token.id);
  }
  if (entry.key !== key) {
    updateRow(entry.tr, token);
    entry.key = key;
  }
  return entry.tr;
}

const cell = (/** @type {HTMLTableRowElement} */ tr, /** @type {string} */ col) =>
  /** @type {HTMLElement} */ (tr.querySelector(`td[data-col="${col}"] > .value`));

/** The parts of a row that never change (buttons keep their identity, so focus stays on them). */
function fillRowStructure(/** @type {HTMLTableRowElement} */ tr, /** @type {string} */ id) {
  const name = document.createElement('button');
  name.type = 'button';
  name.className = 'name-button';
  name.addEventListener('click', () => void openDetail(id, true));
  const sub = document.createElement('span');
  sub.className = 'sub';
  cell(tr, 'name').append(name, sub);
  const sync = document.createElement('button');
  sync.type = 'button';
  sync.className = 'sync-now';
  sync.addEventListener('click', () => void syncNow(id, sync));
  const wrap = document.createElement('div');
  wrap.className = 'row-actions';
  wrap.append(sync);
  cell(tr, 'actions').append(wrap);
}

function badge(/** @type {string} */ kind, /** @type {string} */ value) {
  const span = document.createElement('span');
  span.className = `badge ${kind}-badge`;
  span.dataset.value = value;
  const member = words[kind]?.[value];
  span.textContent = member?.label ?? value;
  span.title = member?.description ?? '';
  return span;
}

function updateRow(/** @type {HTMLTableRowElement} */ tr, /** @type {any} */ token) {
  for (const column of columns) {
    /** @type {HTMLElement} */ (cell(tr, column.key).parentElement).dataset.label = t(column.label);
  }
  const name = /** @type {HTMLButtonElement} */ (cell(tr, 'name').querySelector('.name-button'));
  name.textContent = nameOf(token);
  name.setAttribute('aria-label', t('detailsOf', { name: nameOf(token) }));
  /** @type {HTMLElement} */ (cell(tr, 'name').querySelector('.sub')).textContent = token.appleId ?? '';
  cell(tr, 'organization').textContent = token.organizationName ?? '';
  cell(tr, 'location').textContent = token.locationName ?? '';
  cell(tr, 'country').textContent = token.countryOrRegion ?? '';
  cell(tr, 'state').replaceChildren(badge('state', token.state));
  const status = cell(tr, 'status');
  status.replaceChildren(badge('status', token.lastSyncStatus));
  if (token.lastSyncStatus === 'inProgress' && token.sync !== null) {
    const progress = document.createElement('span');
    progress.className = 'sub';
    progress.textContent =
      token.sync.job === 'queued'
        ? t('queued')
        : t('progress', {
            phase: phaseWord(token.sync.phase),
            pages: token.sync.pages,
            records: new Intl.NumberFormat(lang).format(token.sync.records),
          });
    status.append(progress);
  }
  const success = cell(tr, 'lastSuccess');
  success.textContent = relative(token.lastSuccessDateTime);
  success.title = absolute(token.lastSuccessDateTime);
  const expires = cell(tr, 'expires');
  const countdown = expiry(token.expirationDateTime);
  const span = document.createElement('span');
  span.className = 'expiry';
  span.dataset.level = countdown.level;
  span.textContent = countdown.text;
  span.title = absolute(token.expirationDateTime);
  expires.replaceChildren(span);
  const failure = cell(tr, 'failure');
  failure.className = 'value failure';
  failure.replaceChildren();
  if (token.failure !== null) {
    const text = document.createElement('span');
    text.textContent = words.failure?.[token.failure.kind] ?? words.reason?.[token.failure.reason] ?? '';
    const detailText = document.createElement('span');
    detailText.className = 'sub';
    detailText.textContent = token.failure.message;
    detailText.title = token.failure.message;
    failure.append(text, detailText);
  }
  const sync = /** @type {HTMLButtonElement} */ (cell(tr, 'actions').querySelector('.sync-now'));
  sync.textContent = t('syncNow');
  sync.setAttribute('aria-label', `${t('syncNow')}: ${nameOf(token)}`);
  sync.disabled = token.lastSyncStatus === 'inProgress';
}

/** Arrow keys move between rows (same column), Home/End to the first/last row. */
function onTableKey(/** @type {KeyboardEvent} */ event) {
  if (!['ArrowDown', 'ArrowUp', 'Home', 'End'].includes(event.key)) return;
  const target = /** @type {HTMLElement} */ (event.target);
  const td = target.closest('td');
  const tr = target.closest('tr');
  if (td === null || tr === null) return;
  const list = [.../** @type {HTMLTableSectionElement} */ ($('rows')).rows];
  const index = list.indexOf(/** @type {HTMLTableRowElement} */ (tr));
  const next =
    event.key === 'ArrowDown'
      ? list[index + 1]
      : event.key === 'ArrowUp'
        ? list[index - 1]
        : event.key === 'Home'
          ? list[0]
          : list[list.length - 1];
  if (next === undefined) return;
  const col = td.dataset.col ?? 'name';
  const focusable =
    /** @type {HTMLElement | null} */ (next.querySelector(`td[data-col="${col}"] button:not(:disabled)`)) ??
    /** @type {HTMLElement | null} */ (next.querySelector('td[data-col="name"] button'));
  if (focusable === null) return;
  event.preventDefault();
  focusable.focus();
}

// ---- actions -----------------------------------------------------------------------------------

async function syncNow(/** @type {string} */ id, /** @type {HTMLButtonElement | null} */ button) {
  clearError('alert');
  if (button) button.disabled = true;
  try {
    await call('POST', `${tokenPath(id)}/syncLicenses`);
    const token = tokens.get(id);
    notice(t('syncRequested', { name: token ? nameOf(token) : id }));
  } catch (error) {
    showError(detail.id === id ? 'detail-alert' : 'alert', error);
    if (button) button.disabled = false;
  }
}

async function readTokenFile(/** @type {HTMLInputElement} */ input) {
  const file = input.files?.[0];
  input.value = '';
  if (file === undefined) return undefined;
  return (await file.text()).trim();
}

async function upload() {
  clearError('alert');
  const content = await readTokenFile(/** @type {HTMLInputElement} */ ($('upload-file')));
  if (content === undefined) return;
  try {
    const created = await call('POST', `${graph}/vppTokens`, { token: content });
    tokens.set(created.id, { ...(tokens.get(created.id) ?? {}), ...summaryFromGraph(created) });
    scheduleRender();
    notice(t('uploaded'));
  } catch (error) {
    showError('alert', error);
  }
}

/** A table row from a Graph vppToken, until the live stream sends the full one. */
function summaryFromGraph(/** @type {any} */ token) {
  return {
    id: token.id,
    displayName: token.displayName ?? null,
    organizationName: token.organizationName ?? null,
    locationName: token.locationName ?? null,
    countryOrRegion: token.countryOrRegion ?? null,
    appleId: token.appleId ?? null,
    vppTokenAccountType: token.vppTokenAccountType,
    state: token.state,
    lastSyncStatus: token.lastSyncStatus,
    expirationDateTime: token.expirationDateTime,
    lastModifiedDateTime: token.lastModifiedDateTime,
    lastSuccessDateTime: null,
    failure: null,
    sync: null,
  };
}

// ---- the detail dialog -------------------------------------------------------------------------

function fact(/** @type {string} */ label, /** @type {string | Node} */ value) {
  const dt = document.createElement('dt');
  dt.textContent = label;
  const dd = document.createElement('dd');
  dd.append(value);
  return [dt, dd];
}

function renderFacts(/** @type {any} */ token) {
  $('detail-title').textContent = nameOf(token);
  const failure = token.failure
    ? `${words.failure?.[token.failure.kind] ?? ''} ${token.failure.message}`.trim()
    : '—';
  const countdown = expiry(token.expirationDateTime);
  $('detail-facts').replaceChildren(
    ...fact(t('colStatus'), badge('status', token.lastSyncStatus)),
    ...fact(t('colState'), badge('state', token.state)),
    ...fact(t('colOrganization'), token.organizationName ?? ''),
    ...fact(t('colLocation'), token.locationName ?? ''),
    ...fact(t('colCountry'), token.countryOrRegion ?? ''),
    ...fact(t('appleId'), token.appleId ?? ''),
    ...fact(t('accountType'), token.vppTokenAccountType ?? ''),
    ...fact(
      t('colLastSuccess'),
      `${relative(token.lastSuccessDateTime)} ${absolute(token.lastSuccessDateTime)}`,
    ),
    ...fact(t('colExpires'), `${countdown.text} (${absolute(token.expirationDateTime)})`),
    ...fact(t('colFailure'), failure),
    ...fact(t('tokenId'), token.id),
  );
  /** @type {HTMLButtonElement} */ ($('detail-sync')).disabled = token.lastSyncStatus === 'inProgress';
}

async function openDetail(/** @type {string} */ id, /** @type {boolean} */ show) {
  const token = tokens.get(id);
  if (token === undefined) return;
  detail.id = id;
  detail.lastStatus = token.lastSyncStatus;
  clearError('detail-alert');
  renderFacts(token);
  const dialog = /** @type {HTMLDialogElement} */ ($('detail'));
  if (show && !dialog.open) {
    detail.holders = null;
    dialog.showModal();
  }
  await Promise.all([loadApps(id, null), loadHistory(id), loadOperations(id)]);
}

function refreshDetail() {
  const id = detail.id;
  if (id === null) return;
  const token = tokens.get(id);
  if (token === undefined) {
    /** @type {HTMLDialogElement} */ ($('detail')).close();
    return;
  }
  renderFacts(token);
  if (token.lastSyncStatus !== detail.lastStatus) {
    detail.lastStatus = token.lastSyncStatus;
    void loadHistory(id);
    void loadOperations(id);
    if (token.lastSyncStatus === 'completed') void loadApps(id, null);
  }
}

async function loadApps(/** @type {string} */ id, /** @type {string | null} */ next) {
  const body = $('apps');
  const filter = encodeURIComponent(`vppTokenId eq '${id}'`);
  const url =
    next ??
    `${graph}/mobileApps?$filter=${filter}&$orderby=displayName&$top=50&$select=id,displayName,bundleId,totalLicenseCount,usedLicenseCount`;
  try {
    const page = await call('GET', url);
    if (detail.id !== id) return;
    const trs = page.value.map((/** @type {any} */ app) => {
      const tr = document.createElement('tr');
      const total = app.totalLicenseCount ?? 0;
      const used = app.usedLicenseCount ?? 0;
      const values = [
        app.displayName ?? '',
        app.bundleId ?? '',
        count(total),
        count(used),
        total >= unlimitedCount ? t('unlimited') : count(Math.max(0, total - used)),
      ];
      values.forEach((value, i) => {
        const td = document.createElement('td');
        td.textContent = value;
        if (i >= 2) td.className = 'num';
        // Used of total as a bar (not for "unlimited" free apps, whose total means nothing).
        if (i === 3 && total > 0 && total < unlimitedCount) {
          const meter = document.createElement('meter');
          meter.min = 0;
          meter.max = total;
          meter.value = Math.min(used, total);
          meter.title = t('usedOf', { used: count(used), total: count(total) });
          td.prepend(meter, ' ');
        }
        tr.append(td);
      });
      tr.append(holdersCell(app));
      return tr;
    });
    if (next === null) body.replaceChildren(...trs);
    else body.append(...trs);
    if (body.children.length === 0) body.replaceChildren(messageRow(t('noApps'), 6));
    // The holders that were open stay open (after a release the apps reload with new counts).
    const open = detail.holders;
    if (open !== null && next === null) {
      const button = /** @type {HTMLButtonElement | null} */ (
        body.querySelector(`button[data-app-id="${CSS.escape(open.appId)}"]`)
      );
      if (button !== null) void toggleHolders(button, open.name, true);
    }
    detail.appsNext = page['@odata.nextLink'] ?? null;
    $('more-apps').hidden = detail.appsNext === null;
  } catch (error) {
    showError('detail-alert', error);
  }
}

/** The app row's button that shows (and hides) its holders under it. */
function holdersCell(/** @type {any} */ app) {
  const td = document.createElement('td');
  const appId = String(app.id);
  const name = app.displayName || app.bundleId || appId;
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'holders-button';
  button.textContent = t('holders');
  button.dataset.appId = appId;
  button.setAttribute('aria-expanded', 'false');
  button.setAttribute('aria-label', t('holdersOf', { app: name }));
  button.addEventListener('click', () => void toggleHolders(button, name, false));
  td.append(button);
  return td;
}

/** Opens the holders of the button's app in a row under it (or closes them); `reload` reopens in place. */
async function toggleHolders(
  /** @type {HTMLButtonElement} */ button,
  /** @type {string} */ name,
  /** @type {boolean} */ reload,
) {
  const appId = button.dataset.appId ?? '';
  const tr = /** @type {HTMLTableRowElement} */ (button.closest('tr'));
  const panelId = `holders-${appId}`;
  const existing = document.getElementById(panelId);
  if (existing !== null && !reload) {
    existing.remove();
    button.setAttribute('aria-expanded', 'false');
    detail.holders = null;
    return;
  }
  // One app's holders at a time.
  for (const other of $('apps').querySelectorAll('.holders-panel')) other.remove();
  for (const b of $('apps').querySelectorAll('.holders-button')) b.setAttribute('aria-expanded', 'false');
  const panel = document.createElement('tr');
  panel.id = panelId;
  panel.className = 'holders-panel';
  const td = document.createElement('td');
  td.colSpan = 6;
  const heading = document.createElement('p');
  heading.className = 'holders-count';
  heading.textContent = t('loading');
  const list = document.createElement('ul');
  list.setAttribute('aria-label', t('holdersOf', { app: name }));
  const more = document.createElement('button');
  more.type = 'button';
  more.className = 'more-holders';
  more.textContent = t('moreHolders');
  more.hidden = true;
  td.append(heading, list, more);
  panel.append(td);
  tr.after(panel);
  button.setAttribute('aria-controls', panelId);
  button.setAttribute('aria-expanded', 'true');
  detail.holders = { appId, name };
  const id = detail.id;
  if (id === null) return;
  /** @type {string | null} */
  let next = null;
  const loadPage = async () => {
    const url =
      next ??
      `/vppd/v1/tokens/${encodeURIComponent(id)}/licenses?${new URLSearchParams({ appId, top: String(holdersPageSize) })}`;
    try {
      const page = await call('GET', url);
      if (detail.id !== id || !panel.isConnected) return;
      heading.textContent = t('holdersCount', { n: count(page.count) });
      list.append(
        ...page.value.map((/** @type {any} */ holder) =>
          holderItem(id, { adamId: page.adamId, pricingParam: page.pricingParam }, name, holder),
        ),
      );
      if (list.children.length === 0) heading.textContent = t('noHolders');
      next = page.nextLink ?? null;
      more.hidden = next === null;
    } catch (error) {
      heading.textContent = '';
      showError('detail-alert', error);
    }
  };
  more.addEventListener('click', async () => {
    const first = list.children.length;
    await loadPage();
    // The focus goes to the first new holder (its Release button when it has one), not back to the top.
    const item = /** @type {HTMLElement | undefined} */ (list.children[first]);
    (item?.querySelector('button') ?? item)?.focus();
  });
  await loadPage();
}

/** One holder: its serial number or client user id, and (with write permission) a release button. */
function holderItem(
  /** @type {string} */ tokenId,
  /** @type {{ adamId: string, pricingParam: string }} */ asset,
  /** @type {string} */ appName,
  /** @type {any} */ holder,
) {
  const li = document.createElement('li');
  li.tabIndex = -1;
  const serial = holder.serialNumber !== undefined;
  const value = String(serial ? holder.serialNumber : holder.clientUserId);
  const label = t(serial ? 'holderSerial' : 'holderUser', { id: value });
  const text = document.createElement('span');
  text.className = 'holder-id';
  text.textContent = label;
  li.append(text);
  if (canWrite()) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'danger release-button';
    button.textContent = t('release');
    button.setAttribute('aria-label', t('releaseOf', { holder: label }));
    button.addEventListener('click', () =>
      askRelease({
        tokenId,
        asset,
        appName,
        label,
        ...(serial ? { serialNumber: value } : { clientUserId: value }),
      }),
    );
    li.append(button);
  }
  return li;
}

/**
 * The release waiting for its confirmation, with the Idempotency-Key of that one confirmation: a second
 * click (or a retried request) answers the same operation instead of releasing twice.
 * @type {{ tokenId: string, asset: { adamId: string, pricingParam: string }, appName: string, label: string, serialNumber?: string,
 *   clientUserId?: string, key: string } | null}
 */
let pendingRelease = null;

/** A fresh random key (crypto.randomUUID needs a secure context; a dashboard on plain http is not one). */
function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `dashboard-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

function askRelease(
  /** @type {{ tokenId: string, asset: { adamId: string, pricingParam: string }, appName: string, label: string, serialNumber?: string, clientUserId?: string }} */ what,
) {
  pendingRelease = { ...what, key: idempotencyKey() };
  $('release-text').textContent = t('releaseConfirm', { app: what.appName, holder: what.label });
  const dialog = /** @type {HTMLDialogElement} */ ($('release-dialog'));
  dialog.returnValue = '';
  dialog.showModal();
}

async function onReleaseClosed() {
  const dialog = /** @type {HTMLDialogElement} */ ($('release-dialog'));
  const what = pendingRelease;
  pendingRelease = null;
  if (dialog.returnValue !== 'release' || what === null) return;
  clearError('detail-alert');
  const body = {
    assets: [what.asset],
    ...(what.serialNumber !== undefined
      ? { serialNumbers: [what.serialNumber] }
      : { clientUserIds: [what.clientUserId] }),
  };
  try {
    let op = await call('POST', `/vppd/v1/tokens/${encodeURIComponent(what.tokenId)}/disassociations`, body, {
      'idempotency-key': what.key,
    });
    notice(t('releaseStarted', { holder: what.label }));
    void loadOperations(what.tokenId);
    // The operation runs in vppd's worker: ask until it ends (it ends only after the snapshot followed).
    for (
      let wait = 250;
      op.status === 'pending' || op.status === 'running';
      wait = Math.min(wait * 2, 2000)
    ) {
      await new Promise((resolve) => window.setTimeout(resolve, wait));
      op = await call('GET', `/vppd/v1/operations/${encodeURIComponent(op.id)}`);
    }
    const status = String(op.status);
    const outcome = t(`op${status[0]?.toUpperCase()}${status.slice(1)}`);
    if (status === 'completed') notice(t('releaseDone', { holder: what.label, outcome }));
    else {
      const message = op.failures?.[0]?.errorMessage ?? op.errorMessage ?? '';
      const box = $('detail-alert');
      box.textContent = t('releaseFailed', { holder: what.label, outcome, message });
      box.hidden = false;
    }
  } catch (error) {
    showError('detail-alert', error);
  }
  if (detail.id !== what.tokenId) return;
  void loadOperations(what.tokenId);
  await loadApps(what.tokenId, null);
}

function messageRow(/** @type {string} */ text, /** @type {number} */ span) {
  const tr = document.createElement('tr');
  const td = document.createElement('td');
  td.colSpan = span;
  td.textContent = text;
  tr.append(td);
  return tr;
}

function duration(/** @type {string} */ start, /** @type {string | null} */ end) {
  if (end === null) return '…';
  const seconds = (Date.parse(end) - Date.parse(start)) / 1000;
  return seconds < 60
    ? `${seconds.toFixed(1)} s`
    : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

const svgNs = 'http://www.w3.org/2000/svg';

/**
 * Sync durations and outcomes over time, oldest on the left: one bar per run, its height the duration
 * (against the longest run shown), its colour the outcome; each bar's title tells start, duration and
 * outcome. Plain SVG built through the DOM (no inline styles: the page's CSP allows none).
 */
function renderHistoryChart(/** @type {any[]} */ runs, /** @type {(o: string) => string} */ outcomeWord) {
  const figure = $('history-chart');
  const done = runs.filter((run) => run.finishedAt !== null).reverse();
  if (done.length === 0) {
    figure.replaceChildren();
    figure.hidden = true;
    return;
  }
  figure.hidden = false;
  const seconds = done.map((run) =>
    Math.max(0, (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000),
  );
  const longest = Math.max(...seconds, 0.001);
  const width = 320;
  const height = 80;
  const slot = width / Math.max(done.length, 10);
  const svg = document.createElementNS(svgNs, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height + 14}`);
  svg.setAttribute('role', 'img');
  const failed = done.filter((run) => run.outcome === 'failed').length;
  svg.setAttribute(
    'aria-label',
    t('historyChart', {
      n: done.length,
      failed,
      longest: duration('1970-01-01T00:00:00Z', new Date(longest * 1000).toISOString()),
    }),
  );
  done.forEach((run, i) => {
    const h = Math.max(2, (seconds[i] / longest) * height);
    const bar = document.createElementNS(svgNs, 'rect');
    bar.setAttribute('x', String(i * slot + 1));
    bar.setAttribute('y', String(height - h));
    bar.setAttribute('width', String(Math.max(1, slot - 2)));
    bar.setAttribute('height', String(h));
    bar.setAttribute('class', `bar bar-${run.outcome}`);
    const title = document.createElementNS(svgNs, 'title');
    title.textContent = `${absolute(run.startedAt)} · ${duration(run.startedAt, run.finishedAt)} · ${outcomeWord(run.outcome)}`;
    bar.append(title);
    svg.append(bar);
  });
  const axis = document.createElementNS(svgNs, 'text');
  axis.setAttribute('x', '0');
  axis.setAttribute('y', String(height + 12));
  axis.setAttribute('class', 'axis');
  axis.textContent = t('historyChartAxis', {
    longest: duration('1970-01-01T00:00:00Z', new Date(longest * 1000).toISOString()),
  });
  svg.append(axis);
  figure.replaceChildren(svg);
}

async function loadHistory(/** @type {string} */ id) {
  try {
    const history = await call('GET', `/vppd/v1/tokens/${encodeURIComponent(id)}/syncs?top=20`);
    if (detail.id !== id) return;
    const outcomeWord = (/** @type {string} */ outcome) =>
      t(`outcome${outcome[0]?.toUpperCase()}${outcome.slice(1)}`);
    const trs = history.value.map((/** @type {any} */ run) => {
      const tr = document.createElement('tr');
      const counts =
        run.assets === null && run.assignments === null
          ? '—'
          : `${count(run.assets)} / ${count(run.assignments)}`;
      const error =
        run.error === null ? '' : `${words.failure?.[run.error.kind] ?? ''} ${run.error.message}`.trim();
      const values = [
        absolute(run.startedAt),
        duration(run.startedAt, run.finishedAt),
        outcomeWord(run.outcome),
        counts,
        error,
      ];
      values.forEach((value, i) => {
        const td = document.createElement('td');
        td.textContent = value;
        if (i === 3) td.className = 'num';
        tr.append(td);
      });
      return tr;
    });
    $('history').replaceChildren(...(trs.length > 0 ? trs : [messageRow(t('noHistory'), 5)]));
    renderHistoryChart(history.value, outcomeWord);
  } catch (error) {
    showError('detail-alert', error);
  }
}

/** The token's recent license operations (vppd's `/vppd/v1/operations`), newest first. */
async function loadOperations(/** @type {string} */ id) {
  try {
    const page = await call('GET', `/vppd/v1/operations?tokenId=${encodeURIComponent(id)}&top=10`);
    if (detail.id !== id) return;
    const trs = page.value.map((/** @type {any} */ op) => {
      const tr = document.createElement('tr');
      const kind = t(op.kind === 'associate' ? 'kindAssociate' : 'kindDisassociate');
      const status = String(op.status);
      const values = [
        absolute(op.createdDateTime),
        op.source === 'reclaim' ? t('fromReclaim', { kind }) : kind,
        t(`op${status[0]?.toUpperCase()}${status.slice(1)}`),
        `${count(op.requestedCount)} / ${count(op.completedCount)} / ${count(op.failedCount)}`,
        op.errorMessage ?? '',
      ];
      values.forEach((value, i) => {
        const td = document.createElement('td');
        td.textContent = value;
        if (i === 3) td.className = 'num';
        tr.append(td);
      });
      if (op.failedCount > 0)
        void loadOperationErrors(op.id, /** @type {HTMLTableCellElement} */ (tr.lastChild));
      return tr;
    });
    $('operations').replaceChildren(...(trs.length > 0 ? trs : [messageRow(t('noOperations'), 5)]));
  } catch (error) {
    showError('detail-alert', error);
  }
}

/** Apple's error numbers of a failed operation's items, with how many items each (e.g. "9610 ×2"). */
async function loadOperationErrors(/** @type {string} */ opId, /** @type {HTMLTableCellElement} */ cell) {
  try {
    const op = await call('GET', `/vppd/v1/operations/${encodeURIComponent(opId)}`);
    /** @type {Map<string, number>} */
    const byNumber = new Map();
    for (const f of op.failures ?? []) {
      const key = f.errorNumber === null ? '—' : String(f.errorNumber);
      byNumber.set(key, (byNumber.get(key) ?? 0) + 1);
    }
    const numbers = [...byNumber].map(([n, c]) => `${n} ×${c}`).join(', ');
    cell.textContent = [numbers, cell.textContent].filter((x) => x).join(' · ');
  } catch {
    // the row keeps what it had; the table itself loaded
  }
}

async function renameToken() {
  const id = detail.id;
  const token = id === null ? undefined : tokens.get(id);
  if (id === null || token === undefined) return;
  const input = /** @type {HTMLInputElement} */ ($('rename-input'));
  input.value = token.displayName ?? '';
  const dialog = /** @type {HTMLDialogElement} */ ($('rename-dialog'));
  dialog.returnValue = '';
  dialog.showModal();
  input.select();
}

async function submitRename(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const id = detail.id;
  const input = /** @type {HTMLInputElement} */ ($('rename-input'));
  /** @type {HTMLDialogElement} */ ($('rename-dialog')).close();
  if (id === null) return;
  try {
    await call('PATCH', tokenPath(id), { displayName: input.value.trim() });
    notice(t('renamed'));
  } catch (error) {
    showError('detail-alert', error);
  }
  $('detail-rename').focus();
}

async function renewToken() {
  const id = detail.id;
  clearError('detail-alert');
  const content = await readTokenFile(/** @type {HTMLInputElement} */ ($('renew-file')));
  if (id === null || content === undefined) return;
  try {
    await call('PATCH', tokenPath(id), { token: content });
    notice(t('renewed'));
  } catch (error) {
    showError('detail-alert', error);
  }
}

function askDelete() {
  const id = detail.id;
  const token = id === null ? undefined : tokens.get(id);
  if (token === undefined) return;
  $('delete-text').textContent = t('deleteConfirm', { name: nameOf(token) });
  const dialog = /** @type {HTMLDialogElement} */ ($('delete-dialog'));
  dialog.returnValue = '';
  dialog.showModal();
}

async function onDeleteClosed() {
  const dialog = /** @type {HTMLDialogElement} */ ($('delete-dialog'));
  const id = detail.id;
  if (dialog.returnValue !== 'delete' || id === null) return;
  try {
    await call('DELETE', tokenPath(id));
    tokens.delete(id);
    /** @type {HTMLDialogElement} */ ($('detail')).close();
    scheduleRender();
    notice(t('deleted'));
  } catch (error) {
    showError('detail-alert', error);
  }
}

// ---- start -------------------------------------------------------------------------------------

function wire() {
  $('lang').addEventListener('change', (event) => {
    const value = /** @type {HTMLSelectElement} */ (event.target).value;
    localStorage.setItem(langKey, value);
    applyLanguage(value);
  });
  $('sign-out').addEventListener('click', signOut);
  $('sign-in-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError('alert');
    const value = /** @type {HTMLTextAreaElement} */ ($('bearer')).value.trim().replace(/^Bearer\s+/i, '');
    try {
      await signIn(value, false);
    } catch (error) {
      $('alert').textContent =
        error instanceof ApiError && error.status === 401
          ? t('signInFailed')
          : t('requestFailed', { message: String(error) });
      $('alert').hidden = false;
    }
  });
  $('search').addEventListener('input', (event) => {
    view.search = /** @type {HTMLInputElement} */ (event.target).value;
    render();
  });
  $('filter-status').addEventListener('change', (event) => {
    view.status = /** @type {HTMLSelectElement} */ (event.target).value;
    render();
  });
  $('filter-state').addEventListener('change', (event) => {
    view.state = /** @type {HTMLSelectElement} */ (event.target).value;
    render();
  });
  $('upload-file').addEventListener('change', () => void upload());
  $('rows').addEventListener('keydown', onTableKey);
  $('detail-sync').addEventListener('click', () => {
    if (detail.id !== null) void syncNow(detail.id, /** @type {HTMLButtonElement} */ ($('detail-sync')));
  });
  $('detail-rename').addEventListener('click', () => void renameToken());
  $('rename-form').addEventListener(
    'submit',
    (event) => void submitRename(/** @type {SubmitEvent} */ (event)),
  );
  $('renew-file').addEventListener('change', () => void renewToken());
  $('detail-delete').addEventListener('click', askDelete);
  $('delete-dialog').addEventListener('close', () => void onDeleteClosed());
  $('release-dialog').addEventListener('close', () => void onReleaseClosed());
  $('more-apps').addEventListener('click', () => {
    if (detail.id !== null && detail.appsNext !== null) void loadApps(detail.id, detail.appsNext);
  });
  $('detail').addEventListener('close', () => {
    const id = detail.id;
    detail.id = null;
    if (id !== null)
      /** @type {HTMLElement | null} */ (
        document.querySelector(`tr[data-id="${CSS.escape(id)}"] .name-button`)
      )?.focus();
  });
  for (const button of document.querySelectorAll('[data-close]')) {
    button.addEventListener('click', () =>
      /** @type {HTMLDialogElement} */ (button.closest('dialog')).close(),
    );
  }
  // Ages and countdowns move with time; the data itself only changes through the stream.
  window.setInterval(() => {
    if (bearer !== null) render();
  }, 30_000);
}

async function start() {
  allStrings = await (await fetch('/dashboard/strings.json')).json();
  wire();
  applyLanguage(pickLanguage());
  const saved = sessionStorage.getItem(tokenKey);
  const session = await (await fetch('/dashboard/session', { cache: 'no-store' })).json().catch(() => ({}));
  try {
    if (session.demo === true) {
      await signIn(session.accessToken, true);
      return;
    }
    if (saved !== null) {
      await signIn(saved, false);
      return;
    }
  } catch (error) {
    sessionStorage.removeItem(tokenKey);
    showError('alert', error);
  }
  $('sign-in').hidden = false;
}

void start();
