// How the dashboard writes money, sizes and times: one place, so every page reads alike.

const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
const count = new Intl.NumberFormat("en-US");

/** Integer cents as dollars: 1234 → "$12.34", -50 → "-$0.50". */
export const money = (cents: number): string => usd.format(cents / 100);

export const number = (value: number): string => count.format(value);

const UNITS = ["bytes", "KB", "MB", "GB"] as const;
/** 1536 → "1.5 KB". */
export function bytes(size: number): string {
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${size} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
/** An ISO instant in the browser's zone; null as "never". */
export const when = (iso: string | null | undefined): string => (iso ? dateTime.format(new Date(iso)) : "Never");
