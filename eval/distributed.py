"""Evaluation on Ray (``simulst eval --executor ray``): rows and sweep points on actors that each load the model once.

Every (point, row) pair is a task. An actor builds a point's backend and sessions from its model and session
specs (``simulst.eval.plan.Point``) the first time it meets that point (backends are cached per options, so the points of a policy sweep
share one model) and runs its rows with the same ``run_row`` as a local run. The driver keeps every actor busy
with one task, writes each point's ``instances.log`` and scores in input order, and shows one progress line per
row. An actor that dies has its task run again on another one (and is replaced); a row that raises is reported
in ``scores.json`` (``failed``) and on stderr, and the other rows go on.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from pathlib import Path
from typing import Callable, TextIO

from simulst.errors import SimulstError


class EvalWorker:
    """The body of a Ray actor: builds each point's sessions once, runs rows."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.built: dict[int, tuple] = {}

    def run(self, point: int, model, spec, row, index: int) -> tuple[str, object]:
        """``("instance", dict)``, ``("skipped", reason)`` or ``("failed", message)`` for one row of one point."""
        from simulst import build
        from simulst.eval.run import refusal, run_row

        try:
            if point not in self.built:
                backend = build.model(build.share(model, self.threads))
                self.built[point] = (backend, build.factory(backend, spec), spec.options)
            backend, make_session, session_options = self.built[point]
            reason = refusal(row, make_session, session_options)
            if reason is not None:
                return "skipped", reason
            return "instance", run_row(row, index, backend, make_session, session_options)
        except Exception as exc:  # noqa: BLE001 - reported per row, the others go on
            return "failed", f"{type(exc).__name__}: {exc}"


def evaluate_on_ray(
    points: list,
    rows: list,
    workers: int,
    address: str | None = None,
    computation_aware: bool = False,
    progress: TextIO | None = None,
    on_result: Callable[["Pool", int], None] | None = None,
) -> list[dict]:
    """Every point's scores, as ``evaluate`` would give them point by point, with a progress line per row on
    ``progress``; ``on_result(pool, done)`` is called after each finished task (tests kill an actor there)."""
    from simulst.eval.run import finish, show_progress

    pool = Pool(workers, address)
    try:
        tasks = [(p, i) for p in range(len(points)) for i in range(len(rows))]
        results: dict[tuple[int, int], tuple[str, object]] = {}
        started = time.perf_counter()

        def done(task, result) -> None:
            results[task] = result
            kind, value = result
            if kind == "failed":
                print(f"simulst eval: row {rows[task[1]].id} failed: {value}", file=sys.stderr, flush=True)
            elif kind == "instance" and progress:
                show_progress(progress, len(results), len(tasks), started, value)
            if on_result:
                on_result(pool, len(results))

        pool.run(tasks, lambda task: (task[0], points[task[0]].model, points[task[0]].spec, rows[task[1]], task[1]), done)
    finally:
        pool.close()
    all_scores = []
    for p, point in enumerate(points):
        output = point.output
        instances, skipped, failed = [], {}, {}
        for i, row in enumerate(rows):
            kind, value = results[(p, i)]
            if kind == "instance":
                instances.append({**value, "index": len(instances)})
            elif kind == "skipped":
                skipped.setdefault(row.direction, value)
            else:
                failed[row.id] = value
        if not instances:
            raise SimulstError("no row could be run: " + "; ".join(f"{k}: {v}" for k, v in {**skipped, **failed}.items()))
        Path(output).mkdir(parents=True, exist_ok=True)
        with (Path(output) / "instances.log").open("w", encoding="utf-8") as log:
            log.writelines(json.dumps(instance, ensure_ascii=False) + "\n" for instance in instances)
        all_scores.append(finish(instances, output, computation_aware, skipped, failed))
    return all_scores


class Pool:
    """Ray actors running ``EvalWorker`` tasks, one at a time each; a dead actor's task goes to another."""

    def __init__(self, workers: int, address: str | None) -> None:
        from simulst.ray_runtime import join

        ray, self.started_ray, self.threads = join(workers, address, "--executor ray", "workers")
        self.ray = ray
        self.actor_class = ray.remote(num_cpus=1)(EvalWorker)
        self.actors = [self._start() for _ in range(workers)]
        self.replaced = 0

    def _start(self):
        return self.actor_class.remote(self.threads)

    def run(self, tasks: list, args: Callable, done: Callable) -> None:
        """Run every task (``args(task)`` are the actor call's arguments), calling ``done(task, result)``."""
        ray = self.ray
        queue = deque(tasks)
        running: dict = {}  # future -> (task, actor)
        idle = list(self.actors)
        while queue or running:
            while queue and idle:
                actor, task = idle.pop(), queue.popleft()
                running[actor.run.remote(*args(task))] = (task, actor)
            ready, _ = ray.wait(list(running), num_returns=1)
            task, actor = running.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError):
                queue.appendleft(task)  # its row runs again on another actor
                self.actors.remove(actor)
                replacement = self._start()
                self.actors.append(replacement)
                self.replaced += 1
                idle.append(replacement)
                continue
            idle.append(actor)
            done(task, result)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        if self.started_ray:
            self.ray.shutdown()
