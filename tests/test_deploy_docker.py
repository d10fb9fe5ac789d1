"""deploy/docker/Dockerfile and .dockerignore: static checks, hadolint, and the image's build
and run steps without a Docker engine (compose.yaml: test_deploy_compose.py).

No Docker engine runs here, so the image is checked in miniature: the build stage's wheel is
built from exactly the files the Dockerfile copies (as .dockerignore filters them), unpacked,
and the runtime stage's ENTRYPOINT + CMD run on the image's built-in config until /readyz
answers; then the HEALTHCHECK command, run as it is, must succeed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.waiting import wait_for_200

REPO = Path(__file__).resolve().parent.parent
DOCKER = REPO / "deploy" / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
VENV_BIN = Path(sys.executable).parent
INSTALLER = "tests/install-deploy-test-deps.sh"
PINNED_PYTHON = re.compile(r"^python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?$")


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(VENV_BIN))
    if found is None:
        pytest.fail(f"{name} is missing: run {INSTALLER} (as root)")
    return found


# --- the Dockerfile, statically ----------------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        result.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return result


def stages(text: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(image, stage name, instructions) per FROM, with global ARG defaults substituted."""
    arguments: dict[str, str] = {}
    found: list[tuple[str, str, list[tuple[str, str]]]] = []
    for keyword, rest in instructions(text):
        if keyword == "ARG" and not found:
            name, _, default = rest.partition("=")
            arguments[name] = default
        elif keyword == "FROM":
            image, _, name = rest.partition(" AS ")
            image = re.sub(r"\$\{(\w+)\}", lambda m: arguments.get(m.group(1), ""), image)
            found.append((image, name.strip(), []))
        elif found:
            found[-1][2].append((keyword, rest))
    return found


def env_values(body: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, rest in body:
        if keyword == "ENV":
            values |= dict(re.findall(r"(\w+)=(\S+)", rest))
    return values


def dockerfile_problems(text: str) -> list[str]:
    """What keeps this Dockerfile from what the deployment issue asks for."""
    found = stages(text)
    if len(found) < 2:
        return ["not multi-stage"]
    problems = [
        f"FROM {image}: not a pinned python:3.11.x-slim"
        for image, _, _ in found
        if not PINNED_PYTHON.match(image)
    ]
    build_stages = {f"--from={name}" for _, name, _ in found[:-1]}
    final = found[-1][2]
    last = dict(final)  # the last of each instruction counts
    user = last.get("USER", "root").split(":")[0]
    if not user.isdigit() or int(user) == 0:
        problems.append(f"USER {user}: not a numeric non-root uid")
    if not any(keyword == "COPY" and rest.split()[0] in build_stages for keyword, rest in final):
        problems.append("the runtime stage copies nothing from the build stage")
    healthcheck = last.get("HEALTHCHECK", "NONE")
    url = env_values(final).get("HEALTHCHECK_URL", "")
    if "HEALTHCHECK_URL" not in healthcheck or not url.endswith("/healthz"):
        problems.append(f"HEALTHCHECK does not ask /healthz: {healthcheck} ({url})")
    if "curl" in healthcheck or "wget" in healthcheck:
        problems.append("HEALTHCHECK uses a tool the slim image lacks")
    if json.loads(last.get("ENTRYPOINT", "[]")) != ["apivigil"]:
        problems.append('ENTRYPOINT is not ["apivigil"]')
    if json.loads(last.get("CMD", "[]"))[:3] != ["run", "--config", "/etc/apivigil/apivigil.yaml"]:
        problems.append("CMD does not run the daemon on /etc/apivigil/apivigil.yaml")
    volumes = set(json.loads(last.get("VOLUME", "[]")))
    if not {"/var/lib/apivigil", "/tmp"} <= volumes:
        problems.append(f"VOLUME {sorted(volumes)}: /var/lib/apivigil and /tmp must be volumes")
    return problems


@pytest.mark.unit
def test_dockerfile_meets_the_issue() -> None:
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


@pytest.mark.unit
@pytest.mark.parametrize(
    ("change", "replacement"),
    [
        ("python:3.11.11-slim-bookworm", "python:3.11-slim"),
        ("USER 10001:10001", "USER root"),
        ("HEALTHCHECK ", "# HEALTHCHECK "),
        ("FROM ${PYTHON_IMAGE} AS runtime", "# no second stage"),
        ('ENTRYPOINT ["apivigil"]', 'ENTRYPOINT ["sh"]'),
    ],
)
def test_static_check_catches_a_broken_dockerfile(change: str, replacement: str) -> None:
    text = DOCKERFILE.read_text()
    assert change in text
    assert dockerfile_problems(text.replace(change, replacement)) != []


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("hadolint"), "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.integration
def test_hadolint_is_clean() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_hadolint_catches_a_broken_dockerfile(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("USER 10001:10001", "RUN cd /tmp\nUSER root"))
    result = hadolint(broken)
    assert result.returncode != 0
    assert "DL3003" in result.stdout + result.stderr


# --- the build context --------------------------------------------------------------------------


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last .dockerignore pattern matching the path or a parent wins."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/").removeprefix("**/")
        anywhere = pattern.lstrip("!").startswith("**/")
        for candidate in candidates:
            names = [candidate] + ([candidate.split("/")[-1]] if anywhere else [])
            if any(fnmatch.fnmatchcase(name, glob) for name in names):
                excluded = not negated
    return excluded


def copied_sources() -> list[str]:
    """The sources of every COPY that reads the build context (not --from a stage)."""
    sources: list[str] = []
    for _, _, body in stages(DOCKERFILE.read_text()):
        for keyword, rest in body:
            words = rest.split()
            if keyword == "COPY" and not words[0].startswith("--from="):
                sources += [w for w in words[:-1] if not w.startswith("--")]
    return sources


@pytest.mark.unit
def test_copied_sources_exist_and_are_in_the_build_context() -> None:
    sources = copied_sources()
    assert {"pyproject.toml", "monitor", "deploy/docker/apivigil.yaml"} <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), source
        assert not dockerignore_excludes(source), source
    for private in [
        ".venv/bin/python",
        ".git/config",
        "deploy/docker/secrets/store_url",
        "monitor/__pycache__/cli.cpython-311.pyc",
        "apivigil.db",
        "tests/conftest.py",
    ]:
        assert dockerignore_excludes(private), private


def build_context(directory: Path) -> Path:
    """The files the build stage copies, as .dockerignore lets them into the context."""
    for source in copied_sources():
        origin = REPO / source
        files = (
            [origin] if origin.is_file() else sorted(p for p in origin.rglob("*") if p.is_file())
        )
        for file in files:
            relative = file.relative_to(REPO).as_posix()
            if not dockerignore_excludes(relative):
                (directory / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, directory / relative)
    return directory


def build_stage_wheel(directory: Path) -> Path:
    """The build stage in miniature: `pip wheel` of the build context, unpacked into a
    directory that PYTHONPATH puts before this checkout's editable install."""
    context = build_context(directory / "context")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(directory / "wheels"),
            str(context),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (directory / "wheels").glob("apivigil-*.whl")
    site = directory / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


@pytest.mark.e2e
def test_image_entrypoint_cmd_and_healthcheck_in_miniature(tmp_path: Path) -> None:
    # Given the wheel the build stage makes from the build context alone
    site = build_stage_wheel(tmp_path)
    assert list((site / "monitor" / "store" / "migrations" / "versions").glob("*.py"))
    # and the runtime stage's environment, ENTRYPOINT + CMD and built-in config, on loopback
    runtime = stages(DOCKERFILE.read_text())[-1][2]
    final = dict(runtime)
    port = free_port()
    environment = {
        **os.environ,
        **env_values(runtime),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",  # ENV PATH=/opt/apivigil/bin:$PATH
        "PYTHONPATH": str(site),
        "APIVIGIL_LISTEN": f"127.0.0.1:{port}",  # the image listens on 0.0.0.0:9690
        "APIVIGIL_STORE": f"sqlite:///{tmp_path / 'apivigil.db'}",  # its volume
        "HEALTHCHECK_URL": f"http://127.0.0.1:{port}/healthz",
    }
    imported = subprocess.run(
        ["python", "-P", "-c", "import monitor; print(monitor.__file__)"],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert imported.stdout.startswith(str(site))  # the wheel's code, not this checkout's
    command = json.loads(final["ENTRYPOINT"]) + json.loads(final["CMD"])
    built_in = {"/etc/apivigil/apivigil.yaml": str(DOCKER / "apivigil.yaml")}
    log = tmp_path / "container.log"
    with log.open("w") as output:
        daemon = subprocess.Popen(
            [built_in.get(argument, argument) for argument in command],
            cwd=tmp_path,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    healthcheck = json.loads(final["HEALTHCHECK"].split(" CMD ", 1)[1])  # exec form
    try:
        # When the daemon is ready, then Docker's HEALTHCHECK command passes
        wait_for_200(f"http://127.0.0.1:{port}/readyz", daemon, log.read_text, 60, interval=0.2)
        probe = run(healthcheck, environment)
        assert probe.returncode == 0, probe.stderr
        # and once it has stopped (SIGTERM: docker stop), it fails
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, log.read_text()
        probe = run(healthcheck, environment)
        assert probe.returncode != 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=10)


def run(command: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(command, env=environment, capture_output=True, timeout=30, check=False)
