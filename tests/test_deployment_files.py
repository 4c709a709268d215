"""What an admin deploys: the compose file's structure, and that every setting is documented.

No Docker engine runs here, so the compose file is checked as data.
"""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def settings_variables() -> set[str]:
    source = (ROOT / "secushare" / "settings.py").read_text(encoding="utf-8")
    return set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]+)"', source))


def test_compose_runs_every_part_with_healthchecks_and_volumes():
    services = compose()["services"]
    assert {"db", "redis", "s3", "web", "worker", "beat", "nginx", "migrate"} <= set(services)
    for name in ("db", "redis", "s3", "web"):
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck"
    app = ("web", "worker", "beat", "migrate")
    for name in app:
        waits = services[name]["depends_on"]
        assert waits.get("db", waits.get("migrate", {})).get("condition")
        assert services[name]["env_file"] == ".env"
    assert services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["worker"]["command"][:3] == ["celery", "-A", "secushare"]
    assert "beat" in services["beat"]["command"]
    volumes = set(compose()["volumes"])
    assert {"data", "postgres", "redis", "s3"} <= volumes
    assert "postgres:/var/lib/postgresql/data" in services["db"]["volumes"]


def test_the_image_runs_as_a_non_root_user_with_a_healthcheck():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert dockerfile.count("FROM ") >= 2  # multi-stage
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile


def test_every_setting_is_in_the_readme_and_the_env_example_names_real_ones():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    variables = settings_variables()
    assert {"SITE_URL", "SECRET_KEY", "MASTER_KEYS", "DATABASE_URL", "REDIS_URL"} <= variables
    undocumented = sorted(v for v in variables if f"`{v}`" not in readme)
    assert undocumented == []
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", example, re.M))
    gunicorn = (ROOT / "deploy" / "gunicorn.conf.py").read_text(encoding="utf-8")
    read_by_gunicorn = set(re.findall(r'"(GUNICORN_[A-Z_]+)"', gunicorn))
    assert {"GUNICORN_WORKERS", "GUNICORN_THREADS"} <= read_by_gunicorn
    unknown = named - variables - read_by_gunicorn - {"POSTGRES_PASSWORD"}  # db service's
    assert unknown == set()


def test_the_container_healthcheck_passes_against_a_running_app(live_server):
    import os
    import subprocess
    import sys
    from urllib.parse import urlsplit

    port = str(urlsplit(live_server.url).port)
    env = {**os.environ, "PORT": port, "SITE_URL": f"http://localhost:{port}"}
    ok = subprocess.run([sys.executable, "-m", "secushare.healthcheck"], env=env, timeout=20)
    assert ok.returncode == 0
    env["PORT"] = "1"  # nothing listens there
    down = subprocess.run(
        [sys.executable, "-m", "secushare.healthcheck"], env=env, capture_output=True, timeout=20
    )
    assert down.returncode == 1 and b"unhealthy" in down.stderr
