"""Secrets in the inventory: where they come from, how they are masked and kept
out of Docker's view."""

from __future__ import annotations

import io
import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daskfleet.deploy.recap import Recap
from daskfleet.envfiles import CONTAINER_PATH, ENTRYPOINT_SCRIPT, parse_env_file
from daskfleet.errors import InventoryError
from daskfleet.facts import Facts
from daskfleet.inventory import load_inventory
from daskfleet.masking import MaskingFilter, forget_secrets, mask, mask_data
from daskfleet.specs import ContainerSpec, ImageRef, build_specs

SECRET = "hunter2-$(touch /tmp/pwned)'\"`x`"


@pytest.fixture(autouse=True)
def clean_secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    forget_secrets()
    monkeypatch.setenv("DF_TEST_TOKEN", SECRET)
    yield
    forget_secrets()


def inventory_with_env(tmp_path: Path, env: str) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(
        "cluster: c\n"
        "hosts:\n"
        "  s: {address: 10.0.0.1, roles: [scheduler]}\n"
        f"  w: {{address: 10.0.0.2, env: {env}}}\n"
    )
    return path


def worker_env(tmp_path: Path, env: str) -> dict[str, str]:
    return dict(load_inventory(inventory_with_env(tmp_path, env)).hosts["w"].env)


def test_value_from_the_environment(tmp_path: Path) -> None:
    env = worker_env(tmp_path, "{TOKEN: {from_env: DF_TEST_TOKEN}}")
    assert env == {"TOKEN": SECRET}
    assert mask(f"token is {SECRET}.") == "token is ***."


def test_value_from_a_file_relative_to_the_inventory(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("from-a-file\n")
    env = worker_env(tmp_path, "{TOKEN: {from_file: token.txt}}")
    assert env == {"TOKEN": "from-a-file"}
    assert mask("from-a-file") == "***"


def test_interpolation_and_dollar_escapes(tmp_path: Path) -> None:
    text = '{URL: "https://u:${DF_TEST_TOKEN}@h/$$HOME/$x"}'
    env = worker_env(tmp_path, text)
    assert env == {"URL": f"https://u:{SECRET}@h/$HOME/$x"}
    assert mask(env["URL"]) == "https://u:***@h/$HOME/$x"


def test_plain_values_are_not_secrets(tmp_path: Path) -> None:
    env = worker_env(tmp_path, "{MODE: batch, N: 1}")
    assert env == {"MODE": "batch", "N": "1"}
    assert mask("batch") == "batch"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ("{T: {from_env: DF_NOT_SET_ANYWHERE}}", "DF_NOT_SET_ANYWHERE to be set"),
        ('{T: "${DF_NOT_SET_ANYWHERE}"}', "export DF_NOT_SET_ANYWHERE="),
        ('{T: "${not a name}"}', "an environment variable name inside ${}"),
        ("{T: {from_file: missing.txt}}", "cannot be read"),
        ("{T: {from_vault: x}}", "{from_env: NAME} or {from_file: path}"),
        ("{T: {from_env: X, from_file: y}}", "found from_env, from_file"),
        ("{T: {from_env: ''}}", "expected a variable name"),
        ("{T: [a]}", "expected text or a number"),
    ],
)
def test_bad_secret_references(tmp_path: Path, env: str, fragment: str) -> None:
    with pytest.raises(InventoryError) as info:
        load_inventory(inventory_with_env(tmp_path, env))
    assert fragment in str(info.value)
    assert "hosts.w.env.T" in str(info.value)


def host_facts(name: str) -> Facts:
    return Facts(name, 4, 8 << 30, "x86_64", "6.1", "20.10", "overlay2", "/d", 1 << 40)


def specs_for(tmp_path: Path, env: str) -> list[ContainerSpec]:
    inventory = load_inventory(inventory_with_env(tmp_path, env))
    facts = {n: host_facts(n) for n in "sw"}
    image = ImageRef("sha256:abc", "daskfleet/c:1", "amd64")
    return build_specs(inventory, facts, image)["w"]


def test_secrets_stay_out_of_the_docker_config(tmp_path: Path) -> None:
    (spec,) = specs_for(tmp_path, "{TOKEN: {from_env: DF_TEST_TOKEN}}")
    kwargs = spec.to_docker_kwargs()

    assert SECRET not in json.dumps(kwargs)
    assert kwargs["environment"] == {}
    assert kwargs["command"][:5] == ["sh", "-c", ENTRYPOINT_SCRIPT, "sh", "dask"]
    assert spec.env_file is not None
    assert kwargs["volumes"][spec.env_file.path]["bind"] == CONTAINER_PATH
    assert kwargs["volumes"][spec.env_file.path]["mode"] == "ro"
    assert parse_env_file(spec.env_file.render().decode()) == {"TOKEN": SECRET}


def test_a_changed_secret_changes_the_spec_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (before,) = specs_for(tmp_path, "{TOKEN: {from_env: DF_TEST_TOKEN}}")
    monkeypatch.setenv("DF_TEST_TOKEN", "another value")
    (after,) = specs_for(tmp_path, "{TOKEN: {from_env: DF_TEST_TOKEN}}")
    assert before.to_docker_kwargs()["command"] == after.to_docker_kwargs()["command"]
    assert before.spec_hash != after.spec_hash


def test_no_env_keeps_the_plain_command(tmp_path: Path) -> None:
    (spec,) = specs_for(tmp_path, "{}")
    assert spec.env_file is None
    assert spec.to_docker_kwargs()["command"][:2] == ["dask", "worker"]


def test_the_env_file_reads_back_exactly_in_sh(tmp_path: Path) -> None:
    (spec,) = specs_for(tmp_path, "{TOKEN: {from_env: DF_TEST_TOKEN}, B: 'a\\nb'}")
    assert spec.env_file is not None
    env_file = tmp_path / "env"
    env_file.write_bytes(spec.env_file.render())
    script = ENTRYPOINT_SCRIPT.replace(CONTAINER_PATH, str(env_file))
    out = subprocess.run(
        ["sh", "-c", script, "sh", "sh", "-c", 'printf %s "$TOKEN"'],
        capture_output=True,
        check=True,
        cwd=tmp_path,
    )
    assert out.stdout.decode() == SECRET
    assert not Path("/tmp/pwned").exists()


def test_logs_mask_secrets_in_arguments_and_tracebacks(tmp_path: Path) -> None:
    worker_env(tmp_path, "{TOKEN: {from_env: DF_TEST_TOKEN}}")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("daskfleet.test_secrets")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("running with %s", SECRET)
        try:
            raise ValueError(f"bad {SECRET}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert SECRET not in text
    assert text.count("***") == 2
    assert "ValueError: bad ***" in text


def test_json_documents_are_masked(tmp_path: Path) -> None:
    worker_env(tmp_path, "{TOKEN: {from_env: DF_TEST_TOKEN}}")
    recap = Recap.for_hosts("c", ["w"], check=False)
    recap.hosts["w"].fail(f"failed with {SECRET}")
    data = mask_data(recap.to_dict())
    assert SECRET not in json.dumps(data)
    assert data["hosts"]["w"]["errors"] == ["failed with ***"]
