"""Streaming bytes into a command: real ``sh`` processes, no SSH."""

from __future__ import annotations

import io

from daskfleet.images.channel import local_opener, run_with_input


def test_stream_reaches_the_command_and_progress_counts_it() -> None:
    data = b"x" * (3 * (1 << 20) + 17)
    seen: list[int] = []
    result = run_with_input(
        local_opener(), "wc -c", io.BytesIO(data), progress=seen.append
    )
    assert result.exit_status == 0
    assert int(result.stdout.strip()) == len(data)
    assert result.bytes_sent == sum(seen) == len(data)


def test_command_that_exits_early_does_not_hang() -> None:
    data = io.BytesIO(b"y" * (64 << 20))
    result = run_with_input(local_opener(), "echo gone >&2; exit 3", data)
    assert result.exit_status == 3
    assert result.stderr.strip() == "gone"


def test_environment_reaches_the_command() -> None:
    result = run_with_input(
        local_opener({"DOCKER_HOST": "unix:///x"}), "echo $DOCKER_HOST"
    )
    assert result.stdout.strip() == "unix:///x"
