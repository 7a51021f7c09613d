"""The operator's day on the lab: exec, tunnel, status --watch, the notebook
and the dashboard in a real browser.

The module deploys the lab's cluster with a notebook on the scheduler host
and takes it all down at the end, even when a test fails. Commands that
run until Ctrl-C run as subprocesses that the tests interrupt themselves.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import browser
import docker
import pytest
import yaml
from click.testing import CliRunner, Result

from daskfleet.cli.main import cli
from daskfleet.envfiles import ENTRYPOINT_SCRIPT
from daskfleet.inventory import load_inventory
from daskfleet.notebook import notebook_container_name, read_token
from daskfleet.ssh import SSHFleet
from daskfleet.tls import client_files
from daskfleet.tunnel import Tunnel, cluster_forwards

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::distributed.versions.VersionMismatchWarning"),
]

REPO = Path(__file__).resolve().parents[2]
#: Seconds a command that runs until Ctrl-C may take to print its first lines.
STARTUP = 60


def daskfleet(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def as_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    # After the arguments, unless they hold a command after "--" already.
    result = daskfleet(*args) if "--json" in args else daskfleet(*args, "--json")
    assert result.stdout.startswith("{"), result.output
    return result.exit_code, json.loads(result.stdout)


def exec_json(inventory: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """``daskfleet exec INVENTORY --json [OPTIONS] -- COMMAND`` from ``args``."""
    return as_json("exec", inventory, "--json", *args)


@pytest.fixture(scope="module")
def hosts(lab: Any) -> list[str]:
    """Scheduler host first, then the two worker hosts."""
    return list(lab.host_names)


@pytest.fixture(scope="module")
def addresses(lab: Any) -> dict[str, str]:
    return {h.name: h.address for h in lab.state.hosts}


@pytest.fixture(scope="module")
def inventory(
    lab: Any, hosts: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The lab's inventory plus a notebook on the scheduler host, deployed."""
    data = yaml.safe_load(Path(lab.inventory_path).read_text())
    data["notebook"] = {"host": hosts[0]}
    path = tmp_path_factory.mktemp("operator") / "lab.yml"
    path.write_text(yaml.safe_dump(data))
    code, recap = as_json("deploy", path)
    assert code == 0, json.dumps([recap["errors"], recap["hosts"]], indent=1)
    try:
        yield path
    finally:
        daskfleet("down", path, "--yes")


@pytest.fixture(scope="module")
def scheduler_docker(lab: Any, hosts: list[str]) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=f"unix://{lab.host_socket(hosts[0])}")
    yield client
    client.close()


# exec ------------------------------------------------------------------------


def test_exec_runs_on_every_host(
    inventory: Path, hosts: list[str], addresses: dict[str, str]
) -> None:
    code, run = exec_json(inventory, "--", "sh", "-c", "echo $SSH_CONNECTION")
    assert code == 0, run
    assert list(run["hosts"]) == hosts
    for name, result in run["hosts"].items():
        assert result["status"] == "ok"
        assert f" {addresses[name]} " in result["stdout"]


def test_exec_reports_the_failing_host(
    inventory: Path, hosts: list[str], addresses: dict[str, str]
) -> None:
    script = f'case "$SSH_CONNECTION" in *" {addresses[hosts[1]]} "*) exit 3;; esac'
    result = daskfleet("exec", inventory, "--", "sh", "-c", script)
    assert result.exit_code == 1
    assert f"==> {hosts[1]} (exit 3) <==" in result.output
    assert "3 hosts, 2 ok, 1 failed" in result.output


def test_exec_reports_an_unreachable_host(
    lab: Any, inventory: Path, hosts: list[str]
) -> None:
    lab.stop_sshd(hosts[2])
    try:
        code, run = exec_json(inventory, "--connect-timeout", "2", "--", "true")
    finally:
        lab.start_sshd(hosts[2])
    assert code == 1
    assert run["hosts"][hosts[2]]["status"] == "unreachable"
    assert [run["hosts"][h]["status"] for h in hosts[:2]] == ["ok", "ok"]


def test_exec_limit_and_no_shell(inventory: Path, hosts: list[str]) -> None:
    # Words are passed as they are: the remote shell expands nothing.
    code, run = exec_json(inventory, "-l", hosts[1], "--", "echo", "$HOME")
    assert code == 0
    assert list(run["hosts"]) == [hosts[1]]
    assert run["hosts"][hosts[1]]["stdout"] == "$HOME\n"


# tunnel ----------------------------------------------------------------------


def http_status(url: str, cluster: str | None = None) -> int:
    """The HTTP status of ``url``; for https, trusting ``cluster``'s CA only."""
    context = None
    if url.startswith("https://"):
        assert cluster is not None
        context = ssl.create_default_context(cafile=str(client_files(cluster)[0]))
    try:
        with urllib.request.urlopen(url, timeout=20, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_tunnel_gives_a_working_client_and_dashboard(
    inventory: Path, connect: Any
) -> None:
    """TLS through the tunnel: the client certificate, and the dashboard's
    certificate checked against the cluster's CA for ``localhost``."""
    inv = load_inventory(inventory)
    forwards = cluster_forwards(inv, scheduler_port=0, dashboard_port=0)
    with SSHFleet(inv) as fleet, Tunnel(fleet, inv.scheduler, forwards) as tunnel:
        ports = tunnel.local_ports
        local = f"tls://localhost:{ports['scheduler']}"
        with connect(inventory, local) as client:
            assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6
        url = f"https://localhost:{ports['dashboard']}/health"
        assert http_status(url, inv.cluster) == 200
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(url, timeout=20)  # the system's CAs only


def start(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "daskfleet", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )


def read_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    """Lines of output up to the first holding ``marker``."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    process.kill()
    pytest.fail(f"no {marker!r} in the output: {''.join(lines)}")


def interrupt(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    try:
        rest, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, rest


def test_tunnel_command_until_ctrl_c(inventory: Path, connect: Any) -> None:
    process = start("tunnel", inventory, "--local-port", "0", "--dashboard-port", "0")
    lines = read_until(process, "Ctrl-C")
    urls = dict(line.split() for line in lines[:2])
    assert urls["scheduler"].startswith("tls://localhost:")
    try:
        with connect(inventory, urls["scheduler"]) as client:
            assert client.submit(len, "abc").result(timeout=30) == 3
        cluster = load_inventory(inventory).cluster
        assert http_status(urls["dashboard"], cluster) == 200
    finally:
        code, rest = interrupt(process)
    assert code == 0, rest
    assert "closing the tunnel" in rest


# status --watch --------------------------------------------------------------


def test_watch_refreshes_then_stops_by_itself(
    inventory: Path, hosts: list[str]
) -> None:
    result = daskfleet(
        "status", inventory, "--watch", "--interval", "1", "--count", "2"
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("workers registered") == 2
    for worker in (f"{hosts[1]}-0", f"{hosts[2]}-0"):
        assert worker in result.output


def test_watch_ends_cleanly_on_ctrl_c(inventory: Path) -> None:
    process = start("status", inventory, "--watch", "--interval", "1")
    read_until(process, "Ctrl-C to stop")
    code, rest = interrupt(process)
    assert code == 0, rest
    assert "stopped watching" in rest


# notebook --------------------------------------------------------------------


def test_notebook_answers_with_its_token_only(
    inventory: Path, hosts: list[str], addresses: dict[str, str]
) -> None:
    inv = load_inventory(inventory)
    token = read_token(inv.cluster)
    assert token
    base = f"http://{addresses[hosts[0]]}:8888/api/status"
    deadline = time.monotonic() + 60
    while http_status(f"{base}?token={token}") != 200:
        assert time.monotonic() < deadline, "the notebook never answered"
        time.sleep(1)
    assert http_status(base) == 403
    assert http_status(f"{base}?token=wrong") == 403


def test_notebook_kernel_reaches_the_cluster_over_tls(
    inventory: Path, scheduler_docker: docker.DockerClient
) -> None:
    """A Python started as the notebook's kernels are (its env file read)
    connects with ``Client()`` alone: tls://, the client bundle mounted."""
    name = notebook_container_name(load_inventory(inventory).cluster)
    code = (
        "from distributed import Client\n"
        "with Client(timeout=30) as c:\n"
        "    print(c.scheduler.address, c.submit(sum, [20, 22]).result(timeout=30))\n"
    )
    container = scheduler_docker.containers.get(name)
    exit_code, output = container.exec_run(
        ["sh", "-c", f"{ENTRYPOINT_SCRIPT}", "sh", "python", "-c", code]
    )
    last = output.decode().strip().splitlines()[-1]
    assert exit_code == 0, output.decode()
    assert last.startswith("tls://") and last.endswith(" 42")
    mount = next(
        m for m in container.attrs["Mounts"] if m["Destination"] == "/etc/daskfleet/tls"
    )
    assert mount["RW"] is False
    assert stat.S_IMODE(os.stat(mount["Source"]).st_mode) == 0o700
    key = Path(mount["Source"]) / "client-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.stat().st_uid == 0
    # Without the client bundle the same scheduler refuses it.
    plain = container.exec_run(["python", "-c", code])
    assert plain.exit_code != 0


def test_notebook_token_stays_out_of_sight(
    inventory: Path, scheduler_docker: docker.DockerClient
) -> None:
    inv = load_inventory(inventory)
    token = read_token(inv.cluster)
    assert token
    container = scheduler_docker.containers.get(notebook_container_name(inv.cluster))
    assert token not in container.logs().decode()
    assert token not in json.dumps(container.attrs)  # Env and Cmd included
    assert token not in json.dumps(container.labels)
    plain = daskfleet("status", inventory)
    assert token not in plain.output
    assert "--show-token" in plain.output
    shown = daskfleet("status", inventory, "--show-token")
    assert f"/lab?token={token}" in shown.output


# the dashboard in a browser --------------------------------------------------


def text_includes(*words: str) -> str:
    """A JS condition: the page's text (shadow roots too) holds every word."""
    checks = " && ".join(f"text.includes({json.dumps(w)})" for w in words)
    return f"(() => {{ const text = {browser.PAGE_TEXT}; return {checks}; }})()"


@pytest.fixture(scope="module")
def dashboard(inventory: Path) -> str:
    if browser.browser_path() is None:
        pytest.fail("the browser test needs Debian's chromium: run scripts/bootstrap")
    return f"https://{load_inventory(inventory).scheduler.address}:8787"


def test_browser_lists_the_workers(dashboard: str, hosts: list[str]) -> None:
    workers = [f"{hosts[1]}-0", f"{hosts[2]}-0"]
    dom = browser.dump_dom(f"{dashboard}/info/main/workers.html")
    assert all(worker in dom for worker in workers)
    page = browser.render(f"{dashboard}/workers", text_includes(*workers))
    assert page.canvases > 0


def test_browser_renders_the_status_page(dashboard: str, tmp_path: Path) -> None:
    page = browser.render(f"{dashboard}/status", f"{browser.CANVASES} >= 4")
    assert "Task Stream" in page.text
    assert page.png.startswith(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "status.png").write_bytes(page.png)


# scaling ---------------------------------------------------------------------


def deploy_variant(inventory: Path, edit: Any) -> dict[str, Any]:
    """Deploy the inventory as ``edit`` changes it; the file is restored."""
    original = inventory.read_text()
    data = yaml.safe_load(original)
    edit(data["hosts"])
    inventory.write_text(yaml.safe_dump(data))
    try:
        code, recap = as_json("deploy", inventory)
    finally:
        inventory.write_text(original)
    assert code == 0, (recap["errors"], recap["hosts"])
    return recap


def test_scaling_keeps_held_results(
    inventory: Path, hosts: list[str], connect: Any
) -> None:
    _, second, third = hosts
    saved = yaml.safe_load(inventory.read_text())["hosts"]

    # Shrink to one worker host, then hold results on it.
    recap = deploy_variant(inventory, lambda h: h.pop(third))
    assert recap["hosts"][third]["actions"][0].startswith("remove ")
    with connect(inventory) as client:
        held = client.scatter(list(range(100)))
        names = [w["name"] for w in client.scheduler_info()["workers"].values()]
        assert names == [f"{second}-0"]

        # Grow: the third host comes back with two workers.
        def grow(h: dict[str, Any]) -> None:
            h[third] = {**saved[third], "nworkers": 2}

        recap = deploy_variant(inventory, grow)
        assert sorted(recap["health"]["workers"]) == [
            f"{second}-0",
            f"{third}-0",
            f"{third}-1",
        ]
        assert recap["hosts"][second]["changed"] == 0

        # Shrink again: the second host leaves, its results move first.
        def shrink(h: dict[str, Any]) -> None:
            h.pop(second)
            h[third] = {**saved[third], "nworkers": 2}

        recap = deploy_variant(inventory, shrink)
        assert recap["hosts"][second]["actions"][0].startswith("remove ")
        assert sorted(recap["health"]["workers"]) == [f"{third}-0", f"{third}-1"]
        assert client.gather(held) == list(range(100))
