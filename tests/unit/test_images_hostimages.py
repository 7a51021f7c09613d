"""Reading what a host's Docker holds from the probe's output."""

from __future__ import annotations

import json

import pytest

from daskfleet.errors import DockerError
from daskfleet.images.archive import chain_ids
from daskfleet.images.hostimages import parse_probe

OUTPUT = """\
zstd yes
python3 yes
docker 20.10.24+dfsg1
image sha256:aaa ["daskfleet/lab:1"] ["sha256:l1","sha256:l2"]
image sha256:bbb [] ["sha256:l1","sha256:l3"]
"""


def test_parse_probe_collects_images_and_chains() -> None:
    found = parse_probe("h1", OUTPUT)
    assert found.zstd
    assert found.python3
    assert found.docker_version == "20.10.24+dfsg1"
    assert found.has_tag("sha256:aaa", "daskfleet/lab:1")
    assert found.has_image("sha256:bbb")
    assert not found.has_tag("sha256:bbb", "daskfleet/lab:1")
    expected = set(chain_ids(["sha256:l1", "sha256:l2"]))
    expected |= set(chain_ids(["sha256:l1", "sha256:l3"]))
    assert found.chain_ids == expected


def test_parse_probe_of_an_empty_host() -> None:
    found = parse_probe("h1", "zstd no\npython3 no\ndocker 24.0.7\n")
    assert not found.zstd
    assert not found.python3
    assert not found.images
    assert not found.chain_ids


def test_parse_probe_without_docker_names_the_host() -> None:
    with pytest.raises(DockerError, match="h1: docker did not answer"):
        parse_probe("h1", "zstd no\nCannot connect to the Docker daemon\n")


def test_parse_probe_rejects_garbled_listing() -> None:
    with pytest.raises(DockerError, match="unreadable image listing"):
        parse_probe("h1", 'docker 20.10\nimage sha256:a ["x" ["y"]\n')


def test_probe_reads_daskfleet_containers_with_their_labels() -> None:
    labels = {"daskfleet.cluster": "prod", "daskfleet.spec": '{"cpus": 2, "a": "b c"}'}
    output = (
        "zstd no\n"
        "docker 20.10.24\n"
        f'container "/daskfleet-prod-scheduler" "sha256:{"a" * 64}" "running" '
        + json.dumps(labels)
        + "\n"
        f'container "/other" "sha256:{"b" * 64}" "exited" null\n'
    )
    found = parse_probe("h1", output)
    first, second = found.containers
    assert first.name == "daskfleet-prod-scheduler"
    assert (first.state, first.labels) == ("running", labels)
    assert (second.name, second.state, second.labels) == ("other", "exited", {})


def test_unreadable_container_line_names_the_host() -> None:
    with pytest.raises(DockerError, match="h1: unreadable container listing"):
        parse_probe("h1", 'docker 20.10\ncontainer "/x" "sha256:1" {broken\n')
