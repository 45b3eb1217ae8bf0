"""Which step's answer depends on the replica that served an earlier step, found by moving steps.

Runs (each with its own cookie jar, all through the balancer), over every running replica R1..Rn:
1. the flow pinned to each replica twice: what differs within one replica is noise;
2. n mixed runs, step i on replica R((i + offset) mod n) for each offset (with 2 replicas: A/B and B/A), so
   consecutive steps always land on different replicas and every step runs on every replica once; each step is
   compared with the pinned run of the replica that served it;
3. for each step k that changed, runs with the flow pinned to k's replica and ONE earlier step j moved to the
   replica that served j in the mixed run: the first j whose move alone reproduces the change is the step whose
   replica holds the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from scaleout.replay.compare import Noise, broken_links, differences, learn_noise, links
from scaleout.replay.flow import Answer, Step

__all__ = ["Finding", "Verdict", "judge", "KINDS"]

Send = Callable[[Sequence[str], str], list[Answer]]  # (replica per step, run label) -> answers

KINDS = {
    "session": "a cookie set by step {j} is unknown to the other replica (session or signing key kept in one "
    "process): keep sessions in the `redis` service, or sign cookies with a key shared by every replica",
    "local-disk": "a resource created by step {j} is missing on the other replica (written to one container's "
    "disk): use a volume shared by the replicas or an object store",
    "cache": "a value written by step {j} is stale on the other replica (an in-process cache): cache in the "
    "`redis` service or invalidate on every replica",
    "token": "a value handed out by step {j} (a CSRF or form token) is accepted only by the replica that issued "
    "it: derive it from the session kept in a shared store, or sign it with a shared key",
    "state": "the answer depends on which replica served step {j}: state kept in one process",
}


@dataclass
class Finding:
    step: int
    depends_on: int | None
    kind: str
    detail: str
    replicas: tuple[str, str]  # (served step depends_on, served step)
    changes: list[str] = field(default_factory=list)

    def fix(self) -> str:
        return KINDS[self.kind].format(j=self.depends_on)


@dataclass
class Verdict:
    runs: dict[str, list[Answer]]
    findings: list[Finding]
    failing_everywhere: list[int]  # steps answering >= 400 the same way in every pinned run
    drift: list[int]  # steps whose pinned answers differ between replicas (replica identity, not findings)

    @property
    def passed(self) -> bool:
        return not self.findings


def _kind(steps: Sequence[Step], j: int, k: int, runs_j: Answer, expected: Answer, got: Answer) -> str:
    sj = steps[j - 1]
    if got.status == 404 and expected.status < 400 and (sj.method in ("POST", "PUT") or runs_j.status == 201):
        return "local-disk"
    if got.status in (401, 403) or (
        got.status in (301, 302, 303, 307) and expected.status != got.status
    ):
        if runs_j.set_cookie_names():
            return "session"
    if got.status in (400, 403, 419, 422) and expected.status < 400:
        return "token"
    if got.status == expected.status and (sj.method in ("POST", "PUT", "PATCH", "DELETE") or k - j > 1):
        return "cache"
    if runs_j.set_cookie_names():
        return "session"
    return "state"


def _pinned_runs(reps: Sequence[str], n: int, send: Send, progress) -> tuple[dict, dict, dict]:
    """Each replica's two pinned runs: (runs by label, noise per replica and step, replica of each run)."""
    runs: dict[str, list[Answer]] = {}
    noise = {rep: [Noise() for _ in range(n)] for rep in reps}
    owner: dict[str, str] = {}
    for rep in reps:
        progress(f"pinned to {rep} (twice)")
        first, second = send([rep] * n, f"pinned {rep}"), send([rep] * n, f"pinned {rep} again")
        runs[f"pinned {rep}"], runs[f"pinned {rep} again"] = first, second
        owner[f"pinned {rep}"] = owner[f"pinned {rep} again"] = rep
        for i in range(n):
            learn_noise(noise[rep][i], first[i], second[i])
    return runs, noise, owner


def judge(steps: Sequence[Step], replicas: Sequence[str], send: Send, progress=lambda msg: None,
          parallel: int = 1) -> Verdict:
    reps = list(replicas)
    if len(reps) < 2:
        raise ValueError("judge needs at least 2 replicas")
    a = reps[0]
    n = len(steps)
    runs, noise, owner = _pinned_runs(reps, n, send, progress)
    pinned = {rep: runs[f"pinned {rep}"] for rep in reps}
    failing = [
        i + 1
        for i in range(n)
        if all(r[i].status >= 400 or r[i].error for r in runs.values())
        and len({(r[i].status, r[i].error) for r in runs.values()}) == 1
    ]
    invariants = []
    for i in range(n):
        sets = [links(r, i, noise[owner[label]][i]) for label, r in runs.items()]
        invariants.append(set.intersection(*sets) if sets else set())

    def changed(rep: str, k: int, got: list[Answer]) -> list[str]:
        return differences(pinned[rep][k - 1], got[k - 1], noise[rep][k - 1]) or broken_links(
            invariants[k - 1], got, k - 1)

    drift = [i + 1 for i in range(n) if any(differences(pinned[a][i], pinned[rep][i], noise[a][i])
                                           for rep in reps[1:])]
    findings: list[Finding] = []
    explained: set[int] = set()

    def spread(offset: int) -> list[str]:
        return [reps[(i + offset) % len(reps)] for i in range(n)]

    plans = [("mixed" if o == 0 else "mixed, other order" if len(reps) == 2 else f"mixed, offset {o}", spread(o))
             for o in range(len(reps))]
    mixed_runs = []
    for label, plan in plans:
        progress(f"{label}: steps go round {', '.join(plan[:len(reps)])}")
        mixed_runs.append((label, plan, send(plan, label)))
    if parallel > 1:
        from concurrent.futures import ThreadPoolExecutor

        progress(f"{parallel} mixed copies at once, each with its own cookie jar")
        copies = [(f"parallel copy {c + 1}", spread(c)) for c in range(parallel)]
        with ThreadPoolExecutor(parallel) as pool:
            answers = list(pool.map(lambda lp: send(lp[1], lp[0]), copies))
        mixed_runs += [(label, plan, got) for (label, plan), got in zip(copies, answers, strict=True)]
    for label, plan, mixed in mixed_runs:
        runs[label] = mixed
        for k in range(2, n + 1):
            if k in explained:
                continue
            rep_k = plan[k - 1]
            changes = changed(rep_k, k, mixed)
            if not changes:
                continue
            found = None
            for j in range(k - 1, 0, -1):
                # where j ran in this mixed run (another replica than k's, or the next one round)
                other = plan[j - 1] if plan[j - 1] != rep_k else reps[(reps.index(rep_k) + 1) % len(reps)]
                moved = [rep_k] * k
                moved[j - 1] = other
                progress(f"step {k} changed; moving step {j} to {other}")
                got = send(moved, f"step {j} on {other}")
                runs[f"step {j} on {other} (for step {k})"] = got
                again = changed(rep_k, k, got)
                if again:
                    found = (j, got, again)
                    break
            explained.add(k)
            if found is None:
                continue  # the change needs several steps moved at once, or was noise: not claimed
            j, got, again = found
            kind = _kind(steps, j, k, got[j - 1], pinned[rep_k][k - 1], got[k - 1])
            if any(f.depends_on == j and f.kind == kind for f in findings):
                continue  # a later step failing for the same reason
            step = steps[k - 1]
            findings.append(
                Finding(
                    k, j, kind,
                    f"step {k} ({step.method} {step.target}) answers {again[0]} when step {j} "
                    f"({steps[j - 1].method} {steps[j - 1].target}) ran on {other} and step {k} on {rep_k}",
                    (other, rep_k),
                    again,
                )
            )
    return Verdict(runs, findings, failing, drift)
