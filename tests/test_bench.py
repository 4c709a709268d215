"""`make bench` in its quick form: it sets up, measures every row and prints the table."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.bench


def quick_bench(**variables: str) -> subprocess.CompletedProcess:
    """``python -m bench --quick`` with ``variables`` added to the environment; it succeeded."""
    env = {**os.environ, **variables}
    if os.environ.get("SECUSHARE_TEST_PORTS"):
        env["BENCH_PORTS"] = os.environ["SECUSHARE_TEST_PORTS"]
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_the_quick_benchmark_prints_one_table_with_every_row():
    done = quick_bench()
    table = done.stdout.split("\n\n", 1)[1]
    assert "result" in table and "target" in table and "what (sizes)" in table
    for row in (
        "tus upload straight to gunicorn",
        "tus upload through nginx",
        "level 1 download straight from gunicorn",
        "level 1 download from gunicorn through nginx",
        "via X-Accel-Redirect",
        "SXF1 decryption",
        "peak resident growth",
        "concurrent level 1 downloads",
        "level 3 upload through the compose page",
        "level 3 download through the recipient page",
    ):
        assert row in table, f"no row about {row!r}:\n{table}"
    assert "10/10 complete" in table
    assert "it failed" not in table


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs PostgreSQL (DATABASE_URL), as in CI",
)
def test_on_postgresql_more_slow_downloads_than_it_allows_connections_all_complete():
    """PostgreSQL allows 100 connections by default and gunicorn runs 128 threads here; a
    download gives its connection back before it streams, so 120 at once all complete."""
    done = quick_bench(
        BENCH_DATABASE_URL=os.environ["DATABASE_URL"], BENCH_ONLY="slow", BENCH_SLOW_CLIENTS="120"
    )
    assert "; PostgreSQL." in done.stdout
    assert "120/120 complete" in done.stdout, done.stdout
