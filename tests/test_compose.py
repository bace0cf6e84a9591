"""docker-compose.yml and the Dockerfile name things that exist: settings, WSGI and Celery apps,
management commands, volumes and services. No Docker engine is needed: the files are parsed."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands
from django.urls import resolve

ROOT = Path(settings.BASE_DIR)
COMPOSE = ROOT / "docker-compose.yml"
APP_SERVICES = ["web", "worker", "beat"]
ALL_SERVICES = [*APP_SERVICES, "db", "redis"]


def load_compose() -> dict[str, Any]:
    # safe_load resolves the ``<<: *app`` merge keys.
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


COMPOSE_SPEC = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE_SPEC["services"]


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}`` and ``${VAR:?error}``."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        value = env.get(name)
        if op == ":-":
            return value or arg
        if op == "-":
            return arg if value is None else value
        if op == ":?" and not value:
            raise KeyError(f"{name}: {arg}")
        return value or ""

    pattern = r"(?<!\$)\$\{(?P<name>\w+)(?:(?P<op>:-|-|:\?|\?)(?P<arg>[^}]*))?\}"
    return re.sub(pattern, substitute, value).replace("$$", "$")


def environment(service: str, env: dict[str, str] | None = None) -> dict[str, str]:
    raw = SERVICES[service].get("environment", {})
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    defaults = {"SECRET_KEY": "x"}
    return {key: interpolate(str(value), {**defaults, **(env or {})}) for key, value in raw.items()}


def command_words(service: str) -> list[str]:
    """The service's command as words, with an ``sh -c "…"`` script split too."""
    command = SERVICES[service]["command"]
    words = command if isinstance(command, list) else shlex.split(command)
    if words[:2] == ["sh", "-c"]:
        return shlex.split(words[2])
    return words


def all_commands(service: str) -> str:
    """The service's command and healthcheck, as one string to search."""
    parts = [SERVICES[service].get("command", "")]
    parts.append(SERVICES[service].get("healthcheck", {}).get("test", ""))
    return " ".join(" ".join(p) if isinstance(p, list) else str(p) for p in parts)


def mounts(service: str) -> list[tuple[str, str]]:
    """(source, target) of each volume of a service, short or long syntax."""
    pairs = []
    for volume in SERVICES[service].get("volumes", []):
        if isinstance(volume, dict):
            pairs.append((volume.get("source", ""), volume["target"]))
        else:
            source, target = volume.split(":")[:2]
            pairs.append((source, target))
    return pairs


def health_url() -> str:
    return re.search(r"https?://[^'\"\s]+", all_commands("web")).group(0)


def dockerfile_of(service: str) -> Path:
    build = SERVICES[service]["build"]
    if isinstance(build, str):
        return ROOT / build / "Dockerfile"
    return ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def wsgi_target(words: list[str]) -> str:
    return next(w for w in words[words.index("gunicorn") + 1 :] if ":" in w)


class TestServices:
    def test_all_services_are_defined(self) -> None:
        assert set(ALL_SERVICES) <= set(SERVICES)

    @pytest.mark.parametrize("service", ALL_SERVICES)
    def test_service_has_a_healthcheck(self, service: str) -> None:
        healthcheck = SERVICES[service].get("healthcheck", {})
        assert healthcheck.get("test"), f"{service} has no healthcheck"
        assert not healthcheck.get("disable", False)

    @pytest.mark.parametrize("service", APP_SERVICES)
    def test_app_service_waits_for_healthy_dependencies(self, service: str) -> None:
        depends_on = SERVICES[service]["depends_on"]
        assert set(depends_on) == {"db", "redis"}
        for dependency, condition in depends_on.items():
            assert condition["condition"] == "service_healthy"
            assert SERVICES[dependency]["healthcheck"]

    def test_web_lets_a_long_export_stream(self) -> None:
        """A 1M-response responses.csv takes over a minute: gunicorn's default 30 s worker
        timeout would cut it (docs/exports.md)."""
        words = SERVICES["web"]["command"].split()
        assert int(words[words.index("--timeout") + 1]) >= 600

    def test_workers_scale_out(self) -> None:
        """`docker compose up --scale worker=N`: nothing in the worker names one container."""
        worker = SERVICES["worker"]
        assert "container_name" not in worker and "ports" not in worker
        assert "hostname" not in worker  # each replica's Celery node name is its own

    def test_a_read_replica_can_be_named_in_the_environment(self) -> None:
        environment = SERVICES["web"]["environment"]
        assert environment["DATABASE_REPLICA_URL"] == "${DATABASE_REPLICA_URL:-}"

    def test_every_named_volume_is_declared_at_top_level(self) -> None:
        declared = set(COMPOSE_SPEC.get("volumes") or {})
        for name in SERVICES:
            for source, _ in mounts(name):
                if not source.startswith((".", "/", "~")):
                    assert source in declared, f"{name} uses undeclared volume {source}"


class TestAppImage:
    @pytest.mark.parametrize("service", APP_SERVICES)
    def test_app_service_is_built_from_an_existing_dockerfile(self, service: str) -> None:
        assert dockerfile_of(service).is_file()

    @pytest.mark.parametrize("service", APP_SERVICES)
    def test_app_service_names_an_existing_settings_module(self, service: str) -> None:
        module = environment(service)["DJANGO_SETTINGS_MODULE"]
        assert importlib.util.find_spec(module) is not None, module

    def test_dockerfile_cmd_serves_the_same_wsgi_app_as_web(self) -> None:
        cmd = [
            args for name, args in dockerfile_instructions(dockerfile_of("web")) if name == "CMD"
        ]
        assert len(cmd) == 1
        assert wsgi_target(json.loads(cmd[0])) == wsgi_target(command_words("web"))

    def test_build_context_leaves_out_the_env_file(self) -> None:
        ignored = {
            line.strip().lstrip("/")
            for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        }
        assert ".env" in ignored or ".env*" in ignored

    @pytest.mark.parametrize("service", APP_SERVICES)
    def test_mounted_directories_exist_in_the_image_and_belong_to_the_app_user(
        self, service: str
    ) -> None:
        # A named volume mounted where the image has no directory starts empty and owned by
        # root, so the app user could not write to it.
        instructions = dockerfile_instructions(dockerfile_of(service))
        user = next(args for name, args in instructions if name == "USER")
        runs = " && ".join(args for name, args in instructions if name == "RUN")
        made = {path for words in re.findall(r"mkdir -p ([^&;]+)", runs) for path in words.split()}
        owned = {
            path
            for words in re.findall(rf"chown -R {user} ([^&;]+)", runs)
            for path in words.split()
        }
        for _, target in mounts(service):
            # ``mkdir -p a/b`` makes ``a`` too.
            assert any(target == p or p.startswith(f"{target}/") for p in made), target
            assert any(target == p or target.startswith(f"{p}/") for p in owned), target


class TestCommands:
    def test_web_runs_gunicorn_on_the_wsgi_application(self) -> None:
        target = wsgi_target(command_words("web"))
        assert target == "config.wsgi:application"
        module_name, attribute = target.split(":")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, attribute))

    @pytest.mark.parametrize("service", ["worker", "beat"])
    def test_celery_service_runs_the_config_app(self, service: str) -> None:
        from celery import Celery
        from celery.app.utils import find_app

        words = command_words(service)
        assert words[:3] == ["celery", "-A", "config"]
        app = find_app(words[2])
        assert isinstance(app, Celery)
        assert app.main == "config"
        assert app is importlib.import_module("config.celery").app

    @pytest.mark.parametrize("service", ALL_SERVICES)
    def test_management_commands_named_by_a_service_exist(self, service: str) -> None:
        named = re.findall(r"manage\.py\s+([\w-]+)", all_commands(service))
        missing = sorted(set(named) - set(get_commands()))
        assert not missing

    def test_web_migrates_then_bootstraps_before_serving(self) -> None:
        script = " ".join(command_words("web"))
        order = [script.index(s) for s in ("migrate", "bootstrap", "gunicorn")]
        assert order == sorted(order)

    def test_web_healthcheck_calls_the_health_view(self) -> None:
        assert resolve(urlparse(health_url()).path).func.__module__ == "config.health"

    def test_web_healthcheck_script_is_valid_python(self) -> None:
        test = SERVICES["web"]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"]
        compile(test[3], "<web healthcheck>", "exec")

    def test_health_view_is_not_redirected_to_https(self) -> None:
        # With SECURE_SSL_REDIRECT on, the plain-HTTP healthcheck must still get an answer.
        production = importlib.import_module(environment("web")["DJANGO_SETTINGS_MODULE"])
        path = urlparse(health_url()).path.lstrip("/")
        assert any(re.search(p, path) for p in production.SECURE_REDIRECT_EXEMPT)


class TestAppEnvironment:
    @pytest.mark.parametrize("service", APP_SERVICES)
    def test_database_url_points_at_the_db_service(self, service: str) -> None:
        url = urlparse(environment(service)["DATABASE_URL"])
        db = SERVICES["db"]["environment"]
        assert url.scheme.startswith("postgres")
        assert url.hostname == "db"
        assert (url.username, url.password, url.path.lstrip("/")) == (
            db["POSTGRES_USER"],
            db["POSTGRES_PASSWORD"],
            db["POSTGRES_DB"],
        )

    @pytest.mark.parametrize("service", APP_SERVICES)
    def test_redis_url_points_at_the_redis_service(self, service: str) -> None:
        url = urlparse(environment(service)["REDIS_URL"])
        assert url.scheme == "redis"
        assert url.hostname == "redis"
        assert (url.port or 6379) == 6379

    def test_secret_key_must_be_given(self) -> None:
        with pytest.raises(KeyError, match="SECRET_KEY"):
            interpolate(SERVICES["web"]["environment"]["SECRET_KEY"], {})

    @pytest.mark.parametrize("allowed_hosts", [None, "sipas.example.org"])
    def test_web_healthcheck_host_is_allowed_whatever_env_sets(
        self, allowed_hosts: str | None
    ) -> None:
        env = {} if allowed_hosts is None else {"ALLOWED_HOSTS": allowed_hosts}
        hosts = environment("web", env)["ALLOWED_HOSTS"].split(",")
        assert urlparse(health_url()).hostname in hosts
        if allowed_hosts:
            assert allowed_hosts in hosts
