"""A small metrics registry that writes the Prometheus text exposition format (version 0.0.4).

Written by hand rather than with prometheus_client: the controller needs counters, gauges and
one histogram, most of them read at scrape time from counters the controller already keeps, and
the format is a page of text. No dependency, no global registry: whoever needs metrics gets a
`Registry` passed in (tests make their own).

- `Histogram`: observed by the shell (flow setup latency), cumulative buckets.
- `Counter`: for events the northbound itself counts (policy reloads, requests).
- collectors: functions called at each scrape that return `Family` values read from elsewhere
  (the logic's counters, the agent's bindings, port statistics).
"""

from __future__ import annotations

import math
import re
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Flow setup in the controller is tens of microseconds to a few milliseconds.
SETUP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

Labels = tuple[tuple[str, str], ...]


def labels(**kv: object) -> Labels:
    return tuple((k, str(v)) for k, v in kv.items())


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family at scrape time: name, type, help, and (labels, value) samples."""

    name: str
    kind: str  # counter | gauge | histogram
    help: str
    samples: Sequence[tuple[str, Labels, float]] = field(default_factory=tuple)

    @classmethod
    def of(cls, name: str, kind: str, help_: str, values: Iterable[tuple[Labels, float]]) -> Family:
        """A counter or gauge from (labels, value) pairs (the sample name is the family's)."""
        return cls(name, kind, help_, tuple((name, lb, v) for lb, v in values))


class Counter:
    """A counter the northbound increments itself, with optional labels."""

    def __init__(self, name: str, help_: str, label_names: Sequence[str] = ()) -> None:
        self.name, self.help, self.label_names = name, help_, tuple(label_names)
        self._values: dict[Labels, float] = {}
        self._lock = threading.Lock()
        if not self.label_names:
            self._values[()] = 0.0

    def inc(self, amount: float = 1.0, **kv: object) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(kv)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **kv: object) -> float:
        return self._values.get(self._key(kv), 0.0)

    def _key(self, kv: Mapping[str, object]) -> Labels:
        if set(kv) != set(self.label_names):
            raise ValueError(f"{self.name}: labels must be {self.label_names}, got {tuple(kv)}")
        return tuple((n, str(kv[n])) for n in self.label_names)

    def collect(self) -> Family:
        return Family.of(self.name, "counter", self.help, sorted(self._values.items()))


class Histogram:
    """Cumulative-bucket histogram without labels."""

    def __init__(self, name: str, help_: str, buckets: Sequence[float] = SETUP_BUCKETS) -> None:
        if list(buckets) != sorted(set(buckets)) or not buckets:
            raise ValueError("buckets must be increasing")
        self.name, self.help = name, help_
        self.bounds = tuple(float(b) for b in buckets)
        self._counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        i = bisect_left(self.bounds, value)  # le: a value equal to a bound counts in it
        with self._lock:
            self._counts[i] += 1
            self._sum += value

    @property
    def count(self) -> int:
        return sum(self._counts)

    def collect(self) -> Family:
        samples: list[tuple[str, Labels, float]] = []
        running = 0
        for bound, n in zip((*self.bounds, math.inf), self._counts, strict=True):
            running += n
            le = "+Inf" if math.isinf(bound) else repr(bound)  # "1.0", as Prometheus writes it
            samples.append((f"{self.name}_bucket", (("le", le),), float(running)))
        samples.append((f"{self.name}_sum", (), self._sum))
        samples.append((f"{self.name}_count", (), float(running)))
        return Family(self.name, "histogram", self.help, tuple(samples))


Collector = Callable[[], Iterable[Family]]
_M = TypeVar("_M", Counter, Histogram)


class Registry:
    def __init__(self) -> None:
        self._own: dict[str, Counter | Histogram] = {}
        self._collectors: list[Collector] = []

    def counter(self, name: str, help_: str, label_names: Sequence[str] = ()) -> Counter:
        return self._add(Counter(name, help_, label_names))

    def histogram(
        self, name: str, help_: str, buckets: Sequence[float] = SETUP_BUCKETS
    ) -> Histogram:
        return self._add(Histogram(name, help_, buckets))

    def add_collector(self, collector: Collector) -> None:
        self._collectors.append(collector)

    def _add(self, metric: _M) -> _M:
        if NAME_RE.fullmatch(metric.name) is None:
            raise ValueError(f"bad metric name {metric.name!r}")
        if metric.name in self._own:
            raise ValueError(f"metric {metric.name} registered twice")
        self._own[metric.name] = metric
        return metric

    def collect(self) -> list[Family]:
        families = [m.collect() for m in self._own.values()]
        for c in self._collectors:
            families.extend(c())
        names = [f.name for f in families]
        if len(names) != len(set(names)):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise AssertionError(f"metric families collected twice: {dup}")
        return families

    def render(self) -> str:
        return render(self.collect())


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for f in families:
        lines.append(f"# HELP {f.name} {_escape_help(f.help)}")
        lines.append(f"# TYPE {f.name} {f.kind}")
        for sample, lbs, value in f.samples:
            if lbs:
                for k, _ in lbs:
                    if LABEL_RE.fullmatch(k) is None:
                        raise ValueError(f"bad label name {k!r} in {sample}")
                body = ",".join(f'{k}="{_escape_label(v)}"' for k, v in lbs)
                lines.append(f"{sample}{{{body}}} {_number(value)}")
            else:
                lines.append(f"{sample} {_number(value)}")
    return "\n".join(lines) + "\n"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))
