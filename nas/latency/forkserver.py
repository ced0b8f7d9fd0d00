"""Preloaded by the forkserver of latency measurements: the server imports torch and the
measuring code once, and dies with the process that started it."""

from nas.latency.timing import die_with_parent

die_with_parent()
