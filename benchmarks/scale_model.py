"""The scale model behind ``docs/scale.md``: what a burst of cold Lambda environments costs Okta,
with and without the shared token cache (issue 20).

A small discrete-event simulation, seeded and stdlib only, so that ``make bench`` regenerates the
same table on every machine. It models Lambda's scaling (1,000 new environments at once per
function, refilled at 100 a second), environments recycled after 2-6 h and a deploy that replaces
them all, Okta's token lifetime and the bridge's refresh jitter, and the cache's lease protocol as
docs/scale.md describes it (one environment mints under a lease, the others poll with capped
exponential backoff, a dead holder's lease is taken over, a failing cache makes an environment mint
for itself). It counts what reaches Okta, DynamoDB and KMS; the limits it compares them with are
parameters, each with its source in docs/scale.md.

``python benchmarks/scale_model.py`` prints the markdown; ``--markdown FILE`` replaces the block
between the markers in FILE (docs/scale.md) and leaves the rest of the file alone.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import random
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

BEGIN = "<!-- SCALE-MODEL:BEGIN (make bench regenerates this block) -->"
END = "<!-- SCALE-MODEL:END -->"
HOUR = 3600.0


@dataclass(frozen=True)
class Assumptions:
    """Every number the model takes; docs/scale.md gives the source of each."""

    seed: int = 20
    # Lambda: 1,000 new environments per 10 s per function, refilled continuously, at most 1,000.
    scale_burst: int = 1000
    scale_refill_per_s: float = 100.0
    init_s: tuple[float, float] = (0.2, 1.0)  # sandbox + import until the token step
    env_lifetime_h: tuple[float, float] = (2.0, 6.0)  # Lambda recycles environments
    invocation_timeout_s: float = 30.0  # the template's default Timeout
    # Okta
    mint_ms: tuple[float, float] = (150.0, 400.0)  # one /v1/token round trip
    org_bucket_per_min: int = 1200  # custom authorization servers, Enterprise edition
    app_share: float = 0.5  # each OAuth app may use 50 % of a bucket by default
    org_concurrency: int = 75  # simultaneous requests per org (Enterprise, Workforce)
    # The cache
    lease_s: float = 5.0  # BRIDGE_TOKEN_CACHE_LEASE_SECONDS
    poll_first_ms: float = 100.0
    poll_cap_ms: float = 500.0
    warm_recheck_s: tuple[float, float] = (1.0, 2.0)  # a warm environment that met a lease
    circuit_s: float = 30.0  # the table is skipped this long after a cache failure
    cache_failure_p: float = 0.0  # probability that one DynamoDB or KMS call fails
    ddb_ms: tuple[float, float] = (3.0, 10.0)
    kms_ms: tuple[float, float] = (5.0, 15.0)
    item_kb: float = 2.0  # token + DPoP key + envelope; consistent read <= 4 KB: 1 RRU
    partition_rcu_per_s: int = 3000
    throttled_read_waits: bool = False  # True: a throttled read is polled again, not a failure
    # Prices (us-east-1, on-demand)
    rru_usd_per_million: float = 0.125
    wru_usd_per_million: float = 0.625
    kms_usd_per_10k: float = 0.03
    hours_per_month: float = 730.0
    # The simulated day
    deploy_at_s: float = 3 * HOUR
    steady_from_s: float = 1 * HOUR


@dataclass(frozen=True)
class Scenario:
    """One run: a burst of ``envs`` cold environments at t = 0, then the day."""

    envs: int
    cache: bool
    lifetime_s: float = 3600.0
    dpop: bool = False
    arrival: str = "spike"  # spike: all wanted at once; ramp: spread over 10 s
    holder_dies: bool = False  # the first lease holder is killed mid-mint
    day: bool = True  # False: the burst alone (two minutes)
    failure_p: float | None = None

    @property
    def key(self) -> str:
        return repr(self)


@dataclass
class Token:
    tid: int
    issued: float
    expires: float
    refresh: float
    minter: int


@dataclass
class Env:
    """One execution environment."""

    eid: int
    burst: bool
    alive: bool = True
    token: Token | None = None
    cold: bool = True
    arrival: float = 0.0
    wait_start: float | None = None
    keys: set[int] = field(default_factory=set)  # minters whose data key it decrypted
    data_key: bool = False
    nonce: bool = False  # a DPoP nonce from Okta, kept per environment
    circuit_until: float = -1.0


@dataclass
class Counts:
    """What reached each service, with times."""

    okta: list[float] = field(default_factory=list)
    okta_spans: list[tuple[float, float]] = field(default_factory=list)
    reads: list[float] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)
    decrypts: list[float] = field(default_factory=list)
    data_keys: list[float] = field(default_factory=list)
    acquire_ms: list[float] = field(default_factory=list)  # burst: arrival -> token
    waits_ms: list[float] = field(default_factory=list)
    fallbacks: int = 0
    mints_under_lease: int = 0
    throttled: int = 0


class Simulation:
    """The event loop, the table's one item and the environments."""

    def __init__(self, a: Assumptions, s: Scenario) -> None:
        self.a = a
        self.s = s
        self.rng = random.Random(f"{a.seed}:{s.key}")  # noqa: S311 - a model, not security
        self.queue: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self.order = itertools.count()
        self.ids = itertools.count()
        self.tids = itertools.count(1)
        self.envs: list[Env] = []
        self.item: Token | None = None
        self.item_visible = math.inf
        self.lease_owner: int | None = None
        self.lease_until = -math.inf
        self.killed = False
        self.c = Counts()
        self.last_second: deque[float] = deque()  # reads the item's partition served
        self.window = min(300.0, max(s.lifetime_s * 0.1, min(30.0, s.lifetime_s / 4)))
        self.failure_p = a.cache_failure_p if s.failure_p is None else s.failure_p
        self.horizon = a.deploy_at_s + 600.0 if s.day else 120.0

    # -- plumbing
    def at(self, t: float, action: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self.queue, (t, next(self.order), action, args))

    def uniform(self, bounds: tuple[float, float], scale: float = 1.0) -> float:
        return self.rng.uniform(*bounds) * scale

    def rtt(self) -> float:
        """One DynamoDB round trip: the call acts at the event's time, the answer comes later."""
        return self.uniform(self.a.ddb_ms, 0.001)

    def failed(self) -> bool:
        return self.failure_p > 0 and self.rng.random() < self.failure_p

    def throttled(self, t: float) -> bool:
        """A consistent read beyond the partition's read units in the last second is refused
        (the cache treats that as a failure: the environment mints for itself)."""
        while self.last_second and self.last_second[0] <= t - 1.0:
            self.last_second.popleft()
        units = math.ceil(self.a.item_kb / 4)
        if (len(self.last_second) + 1) * units > self.a.partition_rcu_per_s:
            self.c.throttled += 1
            return True
        self.last_second.append(t)
        return False

    def run(self) -> Simulation:
        self.burst(0.0, burst=True)
        if self.s.day:
            self.at(self.a.deploy_at_s, self.deploy)
        while self.queue:
            t, _, action, args = heapq.heappop(self.queue)
            if t > self.horizon:
                break
            action(t, *args)
        return self

    # -- Lambda
    def burst(self, t0: float, *, burst: bool) -> None:
        """``envs`` new environments wanted at ``t0``, created as fast as Lambda scales."""
        for index in range(self.s.envs):
            if self.s.arrival == "ramp":
                created = t0 + 10.0 * index / self.s.envs
            else:
                beyond = max(0, index + 1 - self.a.scale_burst)
                created = t0 + beyond / self.a.scale_refill_per_s
            self.spawn(created, burst=burst)

    def spawn(self, created: float, *, burst: bool = False) -> None:
        env = Env(next(self.ids), burst)
        self.envs.append(env)
        self.at(created + self.uniform(self.a.init_s), self.cold_start, env)
        if self.s.day:
            self.at(created + self.uniform(self.a.env_lifetime_h, HOUR), self.recycle, env)

    def recycle(self, t: float, env: Env) -> None:
        if env.alive:
            env.alive = False
            self.spawn(t)

    def deploy(self, t: float) -> None:
        for env in self.envs:
            env.alive = False
        self.burst(t, burst=False)

    # -- Okta
    def mint(self, t: float, env: Env, *, shared: bool) -> None:
        """A token request (two with DPoP while the environment has no nonce yet)."""
        requests = 2 if self.s.dpop and not env.nonce else 1
        env.nonce = env.nonce or self.s.dpop
        latency = sum(self.uniform(self.a.mint_ms, 0.001) for _ in range(requests))
        start = t
        for _ in range(requests):
            self.c.okta.append(start)
            step = latency / requests
            self.c.okta_spans.append((start, start + step))
            start += step
        if shared:
            self.c.mints_under_lease += 1
            if self.s.holder_dies and not self.killed:
                self.killed = True
                env.alive = False
                self.spawn(t + latency)
                return
        self.at(t + latency, self.minted, env, shared)

    def minted(self, t: float, env: Env, shared: bool) -> None:
        if not env.alive:
            return
        lifetime = self.s.lifetime_s
        token = Token(
            next(self.tids),
            t,
            t + lifetime,
            t + lifetime - self.rng.uniform(self.window / 5, self.window),
            env.eid,
        )
        env.keys.add(env.eid)
        if not shared:
            self.adopt(t, env, token)
            return
        if not env.data_key:  # GenerateDataKey once per environment
            env.data_key = True
            self.c.data_keys.append(t)
            t += self.uniform(self.a.kms_ms, 0.001)
        self.at(t, self.put, env, token)

    def put(self, t: float, env: Env, token: Token) -> None:
        """PutItem, on condition that the lease is still this environment's."""
        self.c.writes.append(t)
        if self.failed():
            self.trip(t, env)
        elif self.lease_owner == env.eid:
            self.item, self.item_visible = token, t
            self.lease_owner, self.lease_until = None, -math.inf
        self.adopt(t + self.rtt(), env, token)

    # -- the environment's token
    def adopt(self, t: float, env: Env, token: Token) -> None:
        if env.cold:
            env.cold = False
            if env.burst:
                self.c.acquire_ms.append((t - env.arrival) * 1000)
        if env.wait_start is not None:
            self.c.waits_ms.append((t - env.wait_start) * 1000)
            env.wait_start = None
        env.token = token
        if self.s.cache:
            check = token.refresh + self.rng.uniform(0, self.window / 5)
            self.at(check, self.warm_check, env, token.tid)
        else:
            self.at(token.refresh, self.own_refresh, env, token.tid)

    def own_refresh(self, t: float, env: Env, tid: int) -> None:
        if env.alive and env.token is not None and env.token.tid == tid:
            self.mint(t, env, shared=False)

    def trip(self, t: float, env: Env) -> None:
        """A cache call failed: skip the table for a while."""
        env.circuit_until = t + self.a.circuit_s

    def fallback(self, t: float, env: Env, *, trip: bool) -> None:
        self.c.fallbacks += 1
        if trip:
            self.trip(t, env)
        if env.wait_start is not None:
            self.c.waits_ms.append((t - env.wait_start) * 1000)
            env.wait_start = None
        self.mint(t, env, shared=False)

    # -- the table
    def read(self, t: float) -> Token | None:
        self.c.reads.append(t)
        return self.item if self.item_visible <= t else None

    def usable(self, token: Token | None, t: float) -> bool:
        return token is not None and t < token.expires - self.window / 5

    def lease_free(self, t: float) -> bool:
        return self.lease_owner is None or self.lease_until <= t

    def take_from_table(self, t: float, env: Env, token: Token) -> None:
        if token.minter not in env.keys:
            if self.failed():
                self.fallback(t, env, trip=True)
                return
            env.keys.add(token.minter)
            self.c.decrypts.append(t)
            t += self.uniform(self.a.kms_ms, 0.001)
        self.adopt(t, env, token)

    def cold_start(self, t: float, env: Env) -> None:
        if not env.alive:
            return
        env.arrival = t
        if not self.s.cache:
            self.mint(t, env, shared=False)
            return
        if self.failed():
            self.fallback(t, env, trip=True)
            return
        if self.throttled(t):
            if self.a.throttled_read_waits:
                self.wait(t, env)
            else:
                self.fallback(t, env, trip=True)
            return
        token, free = self.read(t), self.lease_free(t)
        t += self.rtt()
        if token is not None and self.usable(token, t):
            self.take_from_table(t, env, token)
            if t >= token.refresh and free:
                self.at(t, self.try_lease, env, token.tid, False)
        elif free:
            self.at(t, self.try_lease, env, token.tid if token else 0, True)
        else:
            self.wait(t, env)

    def try_lease(self, t: float, env: Env, seen: int, cold: bool) -> None:
        """Conditional UpdateItem: the lease is free (or expired) and the token unchanged."""
        if not env.alive:
            return
        self.c.writes.append(t)
        current = self.item.tid if self.item is not None and self.item_visible <= t else 0
        if self.failed():
            if cold:
                self.fallback(t, env, trip=True)
            else:
                self.trip(t, env)
            return
        taken = self.lease_free(t) and current == seen
        if taken:
            self.lease_owner, self.lease_until = env.eid, t + self.a.lease_s
        t += self.rtt()
        if taken:
            self.mint(t, env, shared=True)
        elif cold:
            self.wait(t, env)
        else:
            self.at(t + self.uniform(self.a.warm_recheck_s), self.warm_check, env, None)

    def wait(self, t: float, env: Env) -> None:
        if env.wait_start is None:
            env.wait_start = t
        self.at(t + self.poll_delay(0), self.poll, env, 1)

    def poll_delay(self, attempt: int) -> float:
        ceiling = min(self.a.poll_cap_ms, self.a.poll_first_ms * 2**attempt)
        return self.rng.uniform(ceiling / 2, ceiling) / 1000

    def wait_bound(self, env: Env) -> float:
        started = env.wait_start if env.wait_start is not None else env.arrival
        remaining = self.a.invocation_timeout_s - (started - env.arrival)
        return min(2 * self.a.lease_s + 1.0, remaining / 2)

    def poll(self, t: float, env: Env, attempt: int) -> None:
        if not env.alive or env.wait_start is None:
            return
        if self.failed():
            self.fallback(t, env, trip=True)
            return
        if self.throttled(t):
            if not self.a.throttled_read_waits:
                self.fallback(t, env, trip=True)
            elif t - env.wait_start >= self.wait_bound(env):
                self.fallback(t, env, trip=False)
            else:
                deadline = env.wait_start + self.wait_bound(env)
                self.at(min(t + self.poll_delay(attempt), deadline), self.poll, env, attempt + 1)
            return
        token, free = self.read(t), self.lease_free(t)
        t += self.rtt()
        if token is not None and self.usable(token, t):
            self.take_from_table(t, env, token)
        elif free:
            self.at(t, self.try_lease, env, token.tid if token else 0, True)
        elif t - env.wait_start >= self.wait_bound(env):
            self.fallback(t, env, trip=False)
        else:
            deadline = env.wait_start + self.wait_bound(env)
            self.at(min(t + self.poll_delay(attempt), deadline), self.poll, env, attempt + 1)

    def warm_check(self, t: float, env: Env, tid: int | None) -> None:
        """At the fleet's refresh moment plus this environment's jitter."""
        if not env.alive or (tid is not None and (env.token is None or env.token.tid != tid)):
            return
        if t < env.circuit_until:
            self.mint(t, env, shared=False)
            return
        if self.failed() or self.throttled(t):
            self.trip(t, env)
            self.mint(t, env, shared=False)
            return
        token, free = self.read(t), self.lease_free(t)
        t += self.rtt()
        mine = env.token.tid if env.token is not None else 0
        if token is not None and token.tid != mine and self.usable(token, t) and t < token.refresh:
            self.take_from_table(t, env, token)
        elif token is None or t >= token.refresh:
            if free:
                self.at(t, self.try_lease, env, token.tid if token else 0, False)
            else:
                self.at(t + self.uniform(self.a.warm_recheck_s), self.warm_check, env, None)
        else:
            self.at(
                token.refresh + self.rng.uniform(0, self.window / 5), self.warm_check, env, None
            )


# -- measures


def per_window(times: Sequence[float], window: float) -> int:
    """The most events in any ``window`` seconds (a sliding window)."""
    ordered = sorted(times)
    best, low = 0, 0
    for high, t in enumerate(ordered):
        while ordered[low] <= t - window:
            low += 1
        best = max(best, high - low + 1)
    return best


def in_flight(spans: Sequence[tuple[float, float]]) -> int:
    """The most requests open at the same moment."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = now = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


def between(times: Sequence[float], start: float, end: float) -> int:
    return sum(1 for t in times if start <= t < end)


def quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Result:
    """One scenario's figures."""

    scenario: Scenario
    first_minute: int
    peak_per_minute: int
    peak_in_flight: int
    steady_per_hour: float
    deploy_minute: int
    reads_per_hour: float
    writes_per_hour: float
    kms_per_hour: float
    usd_per_month: float
    acquire_p50_ms: float
    acquire_p95_ms: float
    acquire_max_ms: float
    waits: int
    wait_p95_ms: float
    fallbacks: int
    mints_under_lease: int
    peak_reads_per_s: int
    throttled: int


def simulate(s: Scenario, a: Assumptions | None = None) -> Result:
    """Run one scenario and reduce it to its figures."""
    a = a or Assumptions()
    sim = Simulation(a, s).run()
    c = sim.c
    hours = (a.deploy_at_s - a.steady_from_s) / HOUR

    def hourly(times: Sequence[float]) -> float:
        return between(times, a.steady_from_s, a.deploy_at_s) / hours if s.day else 0.0

    units = math.ceil(a.item_kb)
    reads, writes = hourly(c.reads), hourly(c.writes)
    kms = hourly(c.decrypts) + hourly(c.data_keys)
    usd_per_hour = (
        reads * math.ceil(a.item_kb / 4) * a.rru_usd_per_million / 1e6
        + writes * units * a.wru_usd_per_million / 1e6
        + kms * a.kms_usd_per_10k / 1e4
    )
    return Result(
        scenario=s,
        first_minute=between(c.okta, 0.0, 60.0),
        peak_per_minute=per_window(c.okta, 60.0),
        peak_in_flight=in_flight(c.okta_spans),
        steady_per_hour=hourly(c.okta),
        deploy_minute=between(c.okta, a.deploy_at_s, a.deploy_at_s + 60.0) if s.day else 0,
        reads_per_hour=reads,
        writes_per_hour=writes,
        kms_per_hour=kms,
        usd_per_month=usd_per_hour * a.hours_per_month,
        acquire_p50_ms=quantile(c.acquire_ms, 0.5),
        acquire_p95_ms=quantile(c.acquire_ms, 0.95),
        acquire_max_ms=max(c.acquire_ms, default=0.0),
        waits=len(c.waits_ms),
        wait_p95_ms=quantile(c.waits_ms, 0.95),
        fallbacks=c.fallbacks,
        mints_under_lease=c.mints_under_lease,
        peak_reads_per_s=per_window(c.reads, 1.0),
        throttled=c.throttled,
    )


# -- the report

SIZES = (10, 100, 1000)
WAITS: dict[str, Any] = {"throttled_read_waits": True}
EDITIONS = (("Developer (free)", 300), ("Enterprise", 1200), ("Workforce", 2000))


def main_results(a: Assumptions) -> list[Result]:
    return [
        simulate(Scenario(n, cache, lifetime), a)
        for lifetime in (3600.0, 300.0)
        for n in SIZES
        for cache in (False, True)
    ]


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else "< $0.01"


def report(a: Assumptions | None = None) -> Iterator[str]:
    """The markdown block between the markers."""
    a = a or Assumptions()
    results = main_results(a)
    yield BEGIN
    yield ""
    yield from okta_table(a, results)
    yield from cost_table(a, results)
    yield from sensitivity_table(a, results)
    yield from harder_table(a)
    yield END


def okta_table(a: Assumptions, results: list[Result]) -> Iterator[str]:
    share = a.org_bucket_per_min * a.app_share
    yield (
        f"Generated by `benchmarks/scale_model.py` (seed {a.seed}); `make bench` regenerates this "
        "block. A burst of N cold environments at t = 0, 2 h of steady state from 1 h, then a "
        "deploy that replaces every environment at 3 h. Org bucket "
        f"{a.org_bucket_per_min:,}/min, app share {a.app_share:.0%} = {share:,.0f}/min."
    )
    yield ""
    yield "### Token requests to Okta"
    yield ""
    yield (
        "| token lifetime | envs | cache | first minute | peak / min | headroom vs share | "
        "peak in flight | steady / h | deploy minute | mints under lease |"
    )
    yield "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    for r in results:
        s = r.scenario
        headroom = share - r.peak_per_minute
        verdict = f"{headroom:+,.0f}" + ("" if headroom >= 0 else " (429s)")
        flight = f"{r.peak_in_flight}" + (" (429s)" if r.peak_in_flight > a.org_concurrency else "")
        yield (
            f"| {s.lifetime_s:.0f} s | {s.envs:,} | {'on' if s.cache else 'off'} | "
            f"{r.first_minute:,} | {r.peak_per_minute:,} | {verdict} | {flight} | "
            f"{fmt(r.steady_per_hour)} | {r.deploy_minute:,} | {r.mints_under_lease:,} |"
        )
    yield ""


def cost_table(a: Assumptions, results: list[Result]) -> Iterator[str]:
    yield "### What the cache costs, and what it adds to a cold start"
    yield ""
    yield (
        "| token lifetime | envs | GetItem / h | write units / h | KMS requests / h | "
        "USD / month | token step p50 / p95 / max ms (burst) | lease waits | wait p95 ms |"
    )
    yield "|---|---:|---:|---:|---:|---:|---|---:|---:|"
    units = math.ceil(a.item_kb)
    for r in results:
        s = r.scenario
        if not s.cache:
            continue
        yield (
            f"| {s.lifetime_s:.0f} s | {s.envs:,} | {fmt(r.reads_per_hour)} | "
            f"{fmt(r.writes_per_hour * units)} | {fmt(r.kms_per_hour)} | {usd(r.usd_per_month)} | "
            f"{r.acquire_p50_ms:.0f} / {r.acquire_p95_ms:.0f} / {r.acquire_max_ms:.0f} | "
            f"{r.waits:,} | {r.wait_p95_ms:.0f} |"
        )
    without = {(r.scenario.lifetime_s, r.scenario.envs): r for r in results if not r.scenario.cache}
    r1000 = without[(3600.0, 1000)]
    yield ""
    yield (
        "Without the cache the token step of a cold start is one mint: "
        f"p50 / p95 / max {r1000.acquire_p50_ms:.0f} / {r1000.acquire_p95_ms:.0f} / "
        f"{r1000.acquire_max_ms:.0f} ms for 1,000 environments (and no DynamoDB or KMS cost)."
    )
    yield ""


def sensitivity_table(a: Assumptions, results: list[Result]) -> Iterator[str]:
    yield "### Sensitivity: the org's bucket (peak token requests per minute vs the app's share)"
    yield ""
    header = " | ".join(
        f"{name} {rate:,}/min (share {rate * a.app_share:,.0f})" for name, rate in EDITIONS
    )
    yield f"| token lifetime | envs | cache | peak / min | {header} |"
    yield "|---|---:|---|---:|" + "---|" * len(EDITIONS)
    for r in results:
        s = r.scenario
        cells = []
        for _, rate in EDITIONS:
            room = rate * a.app_share - r.peak_per_minute
            cells.append(f"fits ({room:+,.0f})" if room >= 0 else f"**429s** ({room:+,.0f})")
        yield (
            f"| {s.lifetime_s:.0f} s | {s.envs:,} | {'on' if s.cache else 'off'} | "
            f"{r.peak_per_minute:,} | " + " | ".join(cells) + " |"
        )
    yield ""


def harder_table(a: Assumptions) -> Iterator[str]:
    yield "### Harder bursts: 1,000 environments, 3600 s tokens"
    yield ""
    yield (
        "| variant | cache | token requests (burst) | peak in flight | lease waits | wait p95 ms | "
        "fallbacks | GetItem peak / s (RCU) vs partition | reads throttled |"
    )
    yield "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    variants: tuple[tuple[str, dict[str, Any], dict[str, Any]], ...] = (
        ("spike: all wanted at once", {}, {}),
        ("ramp: spread over 10 s", {"arrival": "ramp"}, {}),
        ("DPoP (nonce round trip)", {"dpop": True}, {}),
        ("first lease holder killed mid-mint", {"holder_dies": True}, {}),
        ("DPoP, a throttled read waits", {"dpop": True}, WAITS),
        ("holder killed, a throttled read waits", {"holder_dies": True}, WAITS),
        ("cache calls fail 1 %", {"failure_p": 0.01}, {}),
        ("cache calls fail 10 %", {"failure_p": 0.10}, {}),
    )
    for label, changes, assumed in variants:
        for cache in (False, True):
            if not cache and (assumed or "holder_dies" in changes or "failure_p" in changes):
                continue
            r = simulate(Scenario(1000, cache, day=False, **changes), replace(a, **assumed))
            rcu = r.peak_reads_per_s * math.ceil(a.item_kb / 4)
            partition = f"{rcu:,} / {a.partition_rcu_per_s:,}" if cache else "-"
            yield (
                f"| {label} | {'on' if cache else 'off'} | {r.first_minute:,} | "
                f"{r.peak_in_flight:,} | {r.waits:,} | {r.wait_p95_ms:,.0f} | {r.fallbacks:,} | "
                f"{partition} | {r.throttled:,} |"
            )
    yield ""


def replace_block(text: str, block: str) -> str:
    """``text`` with the lines from BEGIN to END replaced by ``block``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError("the file needs exactly one SCALE-MODEL:BEGIN and one SCALE-MODEL:END")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    return head + block + tail


def write_markdown(target: Path, source: Path | None = None, block: str | None = None) -> str:
    """Put the model's block (``block``, else a fresh run) into ``target``, the rest of the file
    taken from ``source`` (default: ``target`` itself)."""
    text = (source or target).read_text(encoding="utf-8")
    replace_block(text, "")  # the markers first: a file without them fails before the run
    block = "\n".join(report()) if block is None else block
    target.write_text(replace_block(text, block), encoding="utf-8")
    return block


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(prog="scale_model", description=__doc__)
    parser.add_argument("--markdown", type=Path, help="replace the model's block in this file")
    args = parser.parse_args(argv)
    if args.markdown:
        write_markdown(args.markdown)
    else:
        print("\n".join(report()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
