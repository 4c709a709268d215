"""``make bench`` (``python -m bench``): SecuShare held against nginx itself, on loopback.

Prints one table. Every ratio compares two things measured alternately in the same run, so
it holds on a busy machine where absolute figures do not. Sizes come from the environment:

  BENCH_SIZE_MB        transfers in the ratio rows                    default 256
  BENCH_CRYPTO_MB      buffer decrypted in the crypto row             default 128
  BENCH_MEMORY_MB      upload and download of the memory row          default 2048
  BENCH_SLOW_CLIENTS   concurrent slow downloads                      default 100
  BENCH_SLOW_MB        size of each slow download                     default 8
  BENCH_SLOW_KBPS      KiB per second each slow client reads          default 1024
  BENCH_BROWSER_MB     small and large file of the browser rows       default 256,1024
  BENCH_ROUNDS         repetitions of each side of a ratio            default 5
  BENCH_PORTS          loopback port range to use, like 18000-18099   default: any free
  BENCH_KEEP           keep the temporary folder (logs) when set
  BENCH_DATABASE_URL   run on PostgreSQL, like postgres://postgres@127.0.0.1:5432/postgres
                       (a throwaway database is made there)    default: embedded SQLite
  BENCH_ONLY           groups to run, like tus,browser (tus, accel, crypto, memory,
                       slow, browser)                                  default: all

``--quick`` runs everything small and skips the browser (a smoke test, seconds long).
"""

import argparse
import os
import platform
import signal
import subprocess
import sys
import time

from bench.nginx import nginx_binary
from bench.table import MIB, Row, render


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{name} must be a whole number of at least 1, not {raw!r}.")
    return int(raw)


def _browser_sizes(default: tuple[int, int]) -> tuple[int, int]:
    raw = os.environ.get("BENCH_BROWSER_MB", "").strip()
    if not raw:
        return default
    try:
        small, large = (int(part) for part in raw.split(","))
    except ValueError:
        raise SystemExit(
            f"BENCH_BROWSER_MB must be two sizes like 256,1024, not {raw!r}."
        ) from None
    return small * MIB, large * MIB


GROUPS = ("tus", "accel", "crypto", "memory", "slow", "browser")


def _only() -> set[str]:
    raw = os.environ.get("BENCH_ONLY", "").strip()
    chosen = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = chosen - set(GROUPS)
    if unknown:
        raise SystemExit(
            f"BENCH_ONLY names groups that do not exist: {', '.join(sorted(unknown))} "
            f"(there are: {', '.join(GROUPS)})."
        )
    return chosen


def _header(quick: bool) -> str:
    nginx = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True).stderr.strip()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo", encoding="utf-8")  # noqa: SIM115
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"SecuShare benchmark{' (--quick)' if quick else ''}, {time.strftime('%Y-%m-%d %H:%M')}: "
        f"{os.cpu_count()} CPUs ({cpu}), load {load} at the start; "
        f"{nginx.replace('nginx version: ', '')}; Python {platform.python_version()}; "
        f"{'PostgreSQL' if os.environ.get('BENCH_DATABASE_URL', '').strip() else 'SQLite'}.\n"
        "Loopback only. Ratios = SecuShare / baseline, both measured alternately in this run "
        "(medians); absolute figures depend on the machine and its load."
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, no browser")
    args = parser.parse_args(argv)
    if nginx_binary() is None:
        print("The benchmark needs nginx: apt-get install -y nginx-light", file=sys.stderr)
        return 2
    # A stop from outside (timeout, kill) ends the run through the cleanup below.
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda number, _frame: sys.exit(128 + number))
    if os.environ.get("BENCH_PORTS"):
        os.environ["SECUSHARE_TEST_PORTS"] = os.environ["BENCH_PORTS"]

    from bench.measure import Settings

    q = args.quick
    settings = Settings(
        size=_int("BENCH_SIZE_MB", 8 if q else 256) * MIB,
        crypto=_int("BENCH_CRYPTO_MB", 8 if q else 128) * MIB,
        memory=_int("BENCH_MEMORY_MB", 32 if q else 2048) * MIB,
        slow_clients=_int("BENCH_SLOW_CLIENTS", 10 if q else 100),
        slow_size=_int("BENCH_SLOW_MB", 1 if q else 8) * MIB,
        slow_rate=_int("BENCH_SLOW_KBPS", 1024) * 1024,
        rounds=_int("BENCH_ROUNDS", 1 if q else 5),
        chunk=64 * MIB,
    )
    browser_sizes = _browser_sizes((256 * MIB, 1024 * MIB))
    only = _only()
    header = _header(q)
    print(header.splitlines()[0], flush=True)

    from bench.stack import Stack

    started = time.monotonic()
    with Stack() as stack:
        stack.setup_django()
        from django.conf import settings as django_settings

        settings.chunk = django_settings.TUS_MAX_CHUNK
        stack.prepare(collect_static=not q)
        stack.start()
        from bench import measure

        rows: list[Row] = []

        def step(name, function, *a, key):
            """Measure one group of rows; a failure becomes a row, the others still run."""
            if only and key not in only:
                return
            print(f"  measuring: {name} ...", flush=True)
            try:
                result = function(*a)
            except Exception as e:  # reported in the table, with its reason
                result = Row.not_measured(name, "-", f"it failed: {type(e).__name__}: {e}")
            rows.extend(result if isinstance(result, tuple | list) else [result])

        step(
            "tus upload and level 1 download",
            measure.uploads_and_level1_downloads,
            stack,
            settings,
            key="tus",
        )
        step("level 3 via X-Accel-Redirect", measure.level3_accel, stack, settings, key="accel")
        step("SXF1 decryption", measure.decryption, settings, key="crypto")
        step("memory", measure.memory, stack, settings, key="memory")
        step("slow downloads", measure.slow_downloads, stack, settings, key="slow")
        from bench import browser

        if q and (not only or "browser" in only):
            for direction in ("up", "down"):
                what = browser.what(direction, *browser_sizes)
                rows.append(Row.not_measured(what, browser.TARGET_TEXT, "--quick skips it"))
        elif not q:
            step("browser", browser.rows, stack, browser_sizes, key="browser")
    print()
    print(render(rows, header))
    print(f"\n({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
