"""Latency measured on a target device: the Ray node that advertises a custom resource.

A board or a phone-class machine joins the cluster with ``ray start --address HEAD:PORT
--resources '{"RESOURCE": 1}'`` (and this package installed as on the machine that searches);
a profile whose ``node`` is ``RESOURCE`` runs every measurement there, one at a time (each
task takes the whole resource), in a fresh process as at home. Its tables carry that node's
fingerprint and hostname. Measuring there needs the cluster joined (``connected``).
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from nas.errors import NasError
from nas.latency.profile import LatencyError

if TYPE_CHECKING:
    from nas.latency.profile import Profile
    from nas.latency.timing import Timing


@dataclass(frozen=True)
class Node:
    """What a node says of itself: the table name and fingerprint of the profile there, its
    hostname and its Ray node id."""

    name: str
    fingerprint: str
    hostname: str
    node_id: str


@contextmanager
def connected(address: str | None, resource: str):
    """Joined to the Ray cluster at ``address`` while inside; LatencyError unless a node of it
    advertises ``resource``."""
    import ray

    if address is None:
        raise LatencyError(f"--on {resource}: give the cluster's --address HOST:PORT too")
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise LatencyError(f"--address {address}: no Ray cluster answers there ({e})") from None
    try:
        if not ray.cluster_resources().get(resource):
            raise LatencyError(f"no node of the Ray cluster at {address} advertises the "
                               f"resource '{resource}'; join the device with ray start "
                               f"--address {address} --resources '{{\"{resource}\": 1}}'")
        yield
    finally:
        identify.cache_clear()
        ray.shutdown()


def run(profile: Profile, timing: Timing, function: Callable, *args) -> Any:
    """``function(*args)`` in a fresh process: here, or on the node of ``profile.node``."""
    from nas.latency.timing import in_own_process

    if profile.node is None:
        return in_own_process(timing, function, *args)
    return _on(profile.node, in_own_process, timing, function, *args)


@functools.cache
def identify(profile: Profile) -> Node:
    """The node of ``profile.node`` as it describes itself (asked once per profile)."""
    return _on(profile.node, _describe, replace(profile, node=None))


def _describe(profile: Profile) -> Node:
    import ray

    return Node(profile.name(), profile.fingerprint(), socket.gethostname(),
                ray.get_runtime_context().get_node_id())


def _on(resource: str, function: Callable, *args) -> Any:
    import ray

    if not ray.is_initialized():
        raise LatencyError(f"measuring on '{resource}' needs a Ray cluster: give --address")
    task = ray.remote(function).options(num_cpus=0, resources={resource: 1}, max_retries=0)
    try:
        return ray.get(task.remote(*args))
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, NasError):
            raise e.cause from None
        raise LatencyError(f"the measurement on '{resource}' failed: {e.cause!r}") from None
