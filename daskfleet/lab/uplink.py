"""An optional rate limit on the controller's link to the lab hosts.

The limit is a token bucket (``tc`` ``tbf``) on the egress of the lab
bridge's own interface in the machine's namespace. Only packets that the
machine itself sends to the hosts leave through it; frames the bridge
forwards from one host's veth to another's never do, so host-to-host
traffic keeps the full speed of the machine, as between real servers on
one switch while the controller sits behind a slower uplink.
"""

from __future__ import annotations

import json
import logging
import re

from daskfleet.errors import LabError
from daskfleet.lab._proc import run
from daskfleet.lab.config import LabConfig

logger = logging.getLogger(__name__)

#: What ``--uplink-rate`` accepts to remove the limit.
NO_LIMIT = "off"
_RATE = re.compile(r"^(\d+(?:\.\d+)?)(kbit|mbit|gbit)$")
_SCALE = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
#: The bucket holds this much time at the rate (and at least MIN_BURST).
BURST_SECONDS = 0.01
MIN_BURST = 64 * 1024
#: Packets wait at most this long in the queue before they are dropped.
QUEUE_LATENCY = "100ms"


def parse_rate(value: str) -> str | None:
    """``200mbit`` stays ``200mbit``; ``off`` is None; anything else LabError."""
    text = value.strip().lower()
    if text == NO_LIMIT:
        return None
    match = _RATE.match(text)
    if match is None or float(match[1]) <= 0:
        raise LabError(
            f"invalid uplink rate {value!r}: expected a positive number with "
            "kbit, mbit or gbit (bits per second), or off",
            hint="daskfleet lab up --uplink-rate 200mbit",
        )
    return text


def bits_per_second(rate: str) -> float:
    """The rate a :func:`parse_rate` result stands for."""
    match = _RATE.match(rate)
    if match is None:
        raise LabError(f"invalid uplink rate {rate!r}")
    return float(match[1]) * _SCALE[match[2]]


def tbf_command(bridge: str, rate: str) -> list[str]:
    """The ``tc`` command that sets (or replaces) the limit on ``bridge``."""
    burst = max(int(bits_per_second(rate) / 8 * BURST_SECONDS), MIN_BURST)
    return [
        *("tc", "qdisc", "replace", "dev", bridge, "root"),
        *("tbf", "rate", rate, "burst", str(burst), "latency", QUEUE_LATENCY),
    ]


def apply_uplink_rate(config: LabConfig, rate: str | None) -> None:
    """Limit the controller's traffic to the hosts to ``rate``; None: no limit."""
    if rate is not None:
        logger.info("lab %s: controller uplink limited to %s", config.name, rate)
        run(tbf_command(config.bridge, rate))
    elif observed_rate(config) is not None:
        logger.info("lab %s: controller uplink limit removed", config.name)
        run(["tc", "qdisc", "del", "dev", config.bridge, "root"])


def observed_rate(config: LabConfig) -> int | None:
    """The bridge's tbf rate in bytes per second as ``tc`` reports it, or None."""
    listing = run(["tc", "-j", "qdisc", "show", "dev", config.bridge], check=False)
    if listing.returncode != 0:
        return None
    for qdisc in json.loads(listing.stdout or "[]"):
        if qdisc.get("kind") == "tbf" and qdisc.get("root"):
            return int(qdisc["options"]["rate"])
    return None
