const dateTimeParts =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Normalises an OData DateTimeOffset literal (`2026-01-01T00:00:00Z`, `2026-01-01T02:00+02:00`,
 * `…:00.5002993Z`) to the fixed-width UTC form `YYYY-MM-DDTHH:mm:ss.sssZ` the storage compares as text.
 * `exact` is false when digits beyond milliseconds were dropped. Undefined when the text is not a real
 * instant (month 13, 31 February, hour 24) or falls outside years 0001–9999 once in UTC.
 */
export function normaliseDateTimeLiteral(text: string): { value: string; exact: boolean } | undefined {
  const m = dateTimeParts.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, fraction, , sign, oh, om] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = s === undefined ? 0 : Number(s);
  const offsetHours = oh === undefined ? 0 : Number(oh);
  const offsetMinutes = om === undefined ? 0 : Number(om);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return undefined;
  const digits = fraction ?? '';
  const millis = Number(digits.slice(0, 3).padEnd(3, '0'));
  const exact = /^0*$/.test(digits.slice(3));
  // setUTCFullYear, unlike Date.UTC, does not map years 0–99 to 1900–1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, millis);
  const offset = (sign === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes);
  date.setTime(date.getTime() - offset * 60_000);
  const value = date.toISOString();
  // Outside 0001–9999 the ISO form is no longer fixed-width (`+010000-…`), so text order would break.
  if (!/^\d{4}-/.test(value) || value.startsWith('0000')) return undefined;
  return { value, exact };
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}
