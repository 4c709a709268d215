// Sizes, speeds and durations in the page's language, and a smoothed transfer meter.

const lang = () => document.documentElement.lang || undefined;

const UNITS = ["byte", "kilobyte", "megabyte", "gigabyte", "terabyte", "petabyte"];

/** "50.3 MB": decimal units (1 kB = 1000 bytes), as Intl names them. */
export function formatBytes(n) {
  let value = Math.max(0, Number(n) || 0);
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return new Intl.NumberFormat(lang(), {
    style: "unit",
    unit: UNITS[unit],
    unitDisplay: unit === 0 ? "long" : "short", // "23 bytes", not "23 byte"
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  }).format(value);
}

function unitFormat(value, unit) {
  return new Intl.NumberFormat(lang(), { style: "unit", unit, unitDisplay: "short" }).format(value);
}

/** "45 sec", "3 min", "1 hr 20 min"; rounded to what a person can use. */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "…";
  const s = Math.ceil(seconds);
  if (s < 60) return unitFormat(s, "second");
  if (s < 3600) return unitFormat(Math.round(s / 60), "minute");
  const h = Math.floor(s / 3600);
  const m = Math.round((s % 3600) / 60);
  return m ? `${unitFormat(h, "hour")} ${unitFormat(m, "minute")}` : unitFormat(h, "hour");
}

export function formatPercent(fraction) {
  return new Intl.NumberFormat(lang(), { style: "percent", maximumFractionDigits: 0 }).format(
    Math.min(1, Math.max(0, fraction || 0)),
  );
}

/** Fill "{name}" placeholders of a translated sentence. */
export function interpolate(text, values) {
  return text.replace(/\{(\w+)\}/g, (all, key) => (key in values ? String(values[key]) : all));
}

/**
 * Transfer speed smoothed with an exponential moving average, so the time left does not jump
 * with every network hiccup. Call sample(bytesDoneSoFar) regularly (e.g. twice a second).
 */
export class Meter {
  constructor({ halfLife = 3 } = {}) {
    this.halfLife = halfLife; // seconds after which an old speed counts half
    this.speed = null;
    this.last = null;
  }

  reset() {
    this.speed = null;
    this.last = null;
  }

  sample(done, now = performance.now()) {
    if (this.last === null || done < this.last.done) {
      this.last = { done, now };
      return this.speed;
    }
    const seconds = (now - this.last.now) / 1000;
    if (seconds < 0.25) return this.speed;
    const current = (done - this.last.done) / seconds;
    const weight = 1 - 0.5 ** (seconds / this.halfLife);
    this.speed = this.speed === null ? current : this.speed + weight * (current - this.speed);
    this.last = { done, now };
    return this.speed;
  }

  secondsLeft(remaining) {
    return this.speed ? remaining / this.speed : Infinity;
  }
}
