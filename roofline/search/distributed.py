"""Distributed trials: a search whose candidates are Optuna trials in a shared database, for when the
accuracy function is expensive (training, evaluation on a dataset) and runs on many processes or machines.

``distributed_search(space, score, storage, budget=...)`` runs ``workers`` local processes against one
storage URL (``sqlite:///search.db`` on one machine; a PostgreSQL or MySQL URL for a cluster, where every
machine runs the same call, or ``roofline search --storage URL``); ``run_worker`` is one of them and
``load_results`` reads the results table (``roofline.search.results`` columns) back from the storage.

A candidate is one trial: one categorical parameter per decision of the space, sampled by Optuna's TPE
(the score; default) or NSGA-II (the score's objectives). Beside Optuna's tables the database holds
two of ours, which make the guarantees atomic across processes:

- ``roofline_claims`` (study, genome): a genome is evaluated by the one trial that claimed it (a unique
  key: a second trial sampling it, while it runs or after, is a duplicate: told the owner's values if
  it is done, pruned if not; never evaluated again). The evaluated row is stored with the claim, so
  the claims table is the results table.
- ``roofline_budget`` (study, claimed): a claim takes a slot only while ``claimed < budget`` (one
  atomic UPDATE), so the budget is global and never overshot; a larger budget later continues.

A killed worker stops its trial's heartbeat (RDBStorage ``heartbeat_interval``/``grace_period``); another
worker then fails the stale trial and Optuna's retry callback re-queues it with the same parameters,
whose trial takes the claim over (retries up to ``max_retry``; after that the claim is released and
its slot returns to the budget). Workers return when every slot's candidate is evaluated, so a run
again with the same storage and study name resumes: done candidates are never re-evaluated.
Distributed runs are not repeatable (the order depends on timing): ``seed`` seeds each worker
differently.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import warnings
import zlib

import numpy as np
import pandas as pd

from roofline.errors import InvalidParameterError, check_choice, require

__all__ = ["distributed_search", "run_worker", "load_results", "default_storage", "safe_url"]

SAMPLERS = ("tpe", "nsga2")


def default_storage(folder) -> str:
    """The SQLite URL of ``folder``/search.db (one machine only: SQLite over NFS is not safe)."""
    return f"sqlite:///{os.path.abspath(os.path.join(folder, 'search.db'))}"


def _engine_kwargs(url: str) -> dict:
    # SQLite serialises writers: wait for the lock rather than fail under load
    return {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}


def _retry(make, attempts: int = 10):
    """``make()``, again after a failure: workers starting at once on a new database race to create its
    tables (Optuna's and ours); the losers see them on the next attempt."""
    sa, optuna = require("sqlalchemy", "distributed search"), require("optuna", "distributed search")
    for attempt in range(attempts):
        try:
            return make()
        except (sa.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 + 0.3 * np.random.default_rng().random())


class _Claims:
    """The two tables of ours in the storage's database (see the module docstring)."""

    def __init__(self, url: str, study: str):
        sa = require("sqlalchemy", "distributed search")
        self.sa, self.study = sa, study
        self.engine = sa.create_engine(url, **_engine_kwargs(url))
        meta = sa.MetaData()
        self.claims = sa.Table(
            "roofline_claims", meta,
            sa.Column("study", sa.String(255), primary_key=True), sa.Column("genome", sa.String(255), primary_key=True),
            sa.Column("trial_number", sa.Integer, nullable=False), sa.Column("done", sa.Integer, default=0),
            sa.Column("finished", sa.Float), sa.Column("row", sa.Text),
        )  # fmt: skip
        self.budget = sa.Table(
            "roofline_budget", meta,
            sa.Column("study", sa.String(255), primary_key=True), sa.Column("claimed", sa.Integer, nullable=False),
        )  # fmt: skip
        _retry(lambda: meta.create_all(self.engine))
        try:
            with self.engine.begin() as c:
                c.execute(self.budget.insert().values(study=study, claimed=0))
        except sa.exc.IntegrityError:
            pass  # another worker (or an earlier run) made the row

    def _mine(self, genome):
        c = self.claims.c
        return (c.study == self.study) & (c.genome == genome)

    def take(self, genome: str, trial: int, history: list[int], budget: int) -> tuple[str, int | None]:
        """("mine", None), ("duplicate", owner trial number) or ("full", None)."""
        sa, c = self.sa, self.claims.c
        if history:  # a retried trial takes over the claim of the trial it retries
            with self.engine.begin() as con:
                took = con.execute(self.claims.update().where(self._mine(genome) & c.trial_number.in_(history)
                                                              & (c.done == 0)).values(trial_number=trial))  # fmt: skip
                if took.rowcount:
                    return "mine", None
        with self.engine.connect() as con:
            owner = con.execute(sa.select(c.trial_number).where(self._mine(genome))).first()
        if owner is not None:
            return "duplicate", owner[0]
        b = self.budget.c
        try:
            with self.engine.begin() as con:
                slot = con.execute(self.budget.update().where((b.study == self.study) & (b.claimed < budget))
                                   .values(claimed=b.claimed + 1))  # fmt: skip
                if not slot.rowcount:
                    return "full", None
                con.execute(self.claims.insert().values(study=self.study, genome=genome, trial_number=trial, done=0))
        except sa.exc.IntegrityError:  # claimed by another worker between the look and the insert
            with self.engine.connect() as con:
                owner = con.execute(sa.select(c.trial_number).where(self._mine(genome))).first()
            return "duplicate", owner[0] if owner else None
        return "mine", None

    def finish(self, genome: str, trial: int, row: dict) -> None:
        with self.engine.begin() as con:
            con.execute(self.claims.update().where(self._mine(genome) & (self.claims.c.trial_number == trial))
                        .values(done=1, finished=time.time(), row=json.dumps(row)))  # fmt: skip

    def release(self, trial: int) -> None:
        """Drop ``trial``'s unfinished claim and give its slot back (its evaluation failed for good)."""
        c, b = self.claims.c, self.budget.c
        with self.engine.begin() as con:
            gone = con.execute(self.claims.delete().where((c.study == self.study) & (c.trial_number == trial)
                                                          & (c.done == 0)))  # fmt: skip
            if gone.rowcount:
                con.execute(self.budget.update().where(b.study == self.study).values(claimed=b.claimed - gone.rowcount))

    def row(self, genome: str) -> dict | None:
        c = self.claims.c
        with self.engine.connect() as con:
            found = con.execute(self.sa.select(c.row).where(self._mine(genome) & (c.done == 1))).first()
        return json.loads(found[0]) if found else None

    def done(self) -> int:
        c = self.claims.c
        with self.engine.connect() as con:
            query = self.sa.select(self.sa.func.count()).where((c.study == self.study) & (c.done == 1))
            return int(con.execute(query).scalar())

    def rows(self) -> list[dict]:
        c = self.claims.c
        with self.engine.connect() as con:
            query = self.sa.select(c.row).where((c.study == self.study) & (c.done == 1)).order_by(c.finished)
            return [json.loads(r[0]) for r in con.execute(query)]


class _Heartbeat:
    """Records the trial's heartbeat every ``interval`` s from a thread (Optuna's own runs only inside
    ``study.optimize``); from right after ``ask``, so a worker killed at any point leaves a stale trial."""

    def __init__(self, storage, trial_id: int, interval: float):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(storage, trial_id, interval), daemon=True)

    def _run(self, storage, trial_id, interval):
        while True:
            storage.record_heartbeat(trial_id)
            if self.stop.wait(interval):
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def _objectives(score, sampler: str) -> list[tuple[str, str]]:
    single = [("score", "maximize")]
    return list(getattr(score, "objectives", single)) if sampler == "nsga2" else single


def _open(space, score, storage: str, study: str, sampler: str, seed: int, index: int, heartbeat: int, grace,
          max_retry: int, settings: dict | None):  # fmt: skip
    optuna = require("optuna", "distributed search")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    check_choice(sampler, SAMPLERS, "sampler")
    claims = _Claims(storage, study)
    retry_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # heartbeats, retries and constant_liar are marked experimental
        retry = (retry_cls or optuna.storages.RetryFailedTrialCallback)(max_retry=None)

        def on_stale(study_, trial):  # retry, or after max_retry retries give the slot back
            if len(trial.system_attrs.get("retry_history", [])) >= max_retry:
                claims.release(trial.number)
            else:
                retry(study_, trial)

        key = "heartbeat_stale_trial_callback" if retry_cls else "failed_trial_callback"
        rdb = _retry(lambda: optuna.storages.RDBStorage(storage, engine_kwargs=_engine_kwargs(storage),
                     heartbeat_interval=heartbeat, grace_period=grace or 3 * heartbeat, **{key: on_stale}))  # fmt: skip
        worker_seed = int(np.random.SeedSequence([seed, index, os.getpid(), zlib.crc32(socket.gethostname().encode())])
                          .generate_state(1)[0] % 2**31)  # fmt: skip
        if sampler == "tpe":
            chooser = optuna.samplers.TPESampler(seed=worker_seed, constant_liar=True)
        else:
            chooser = optuna.samplers.NSGAIISampler(seed=worker_seed)
    objectives = _objectives(score, sampler)
    wanted = {"decisions": [[n, len(o)] for n, o in space.decisions()], "sampler": sampler,
              "objectives": [list(o) for o in objectives], **(settings or {})}  # fmt: skip
    wanted = json.loads(json.dumps(wanted))  # as stored
    st = _retry(lambda: optuna.create_study(storage=rdb, study_name=study, sampler=chooser, load_if_exists=True,
                                            directions=[d for _, d in objectives]))  # fmt: skip
    old = st.user_attrs.get("roofline.settings")
    if old is None:
        st.set_user_attr("roofline.settings", wanted)
    elif old != wanted:
        changed = [k for k in sorted(set(old) | set(wanted)) if old.get(k) != wanted.get(k)]
        raise InvalidParameterError(
            f"study {study!r} in {safe_url(storage)} is another search: "
            + ", ".join(f"{k} was {old.get(k)!r}, now {wanted.get(k)!r}" for k in changed)
            + "; use another --study name or storage"
        )
    return optuna, rdb, st, claims, objectives


def safe_url(url: str) -> str:
    """``url`` without its password (for messages and search.json)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for messages
        return url.split("@")[-1]


def run_worker(space, score, storage: str, budget: int, study: str = "roofline", sampler: str = "tpe", seed: int = 0,
               index: int = 0, heartbeat: int = 60, grace: int | None = None, max_retry: int = 3, stall: int = 200,
               settings: dict | None = None, on_progress=None) -> int:  # fmt: skip
    """One worker: evaluates candidates of ``space`` with ``score`` until ``budget`` candidates of the
    study are evaluated (by all workers together) and returns how many it evaluated. ``heartbeat`` /
    ``grace`` (s): a trial without a heartbeat for ``grace`` (default 3 x ``heartbeat``) is retried,
    ``max_retry`` times; ``stall`` duplicates in a row stop this worker (the space is nearly spent);
    ``settings`` (JSON) are stored with a new study and must match when it is joined or resumed."""
    if budget < 1:
        raise InvalidParameterError(f"budget must be >= 1, got {budget}")
    budget = min(budget, space.size)
    optuna, rdb, st, claims, objectives = _open(space, score, storage, study, sampler, seed, index, heartbeat, grace,
                                                max_retry, settings)  # fmt: skip
    decisions = [(n, list(range(len(o)))) for n, o in space.decisions()]
    waiting, evaluated, dupes = (optuna.trial.TrialState.WAITING,), 0, 0
    while dupes < stall:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(st)  # a dead worker's trial: failed, then re-queued
        done = claims.done()
        if on_progress:
            on_progress(done, budget)
        if done >= budget:
            break
        if not st.get_trials(deepcopy=False, states=waiting) and _slots_full(claims, budget):
            time.sleep(min(heartbeat, 2))  # the rest are running elsewhere: wait for them, or for their retry
            continue
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Heartbeat of storage")  # ours runs around ask-and-tell (below)
            trial = st.ask()
        with _Heartbeat(rdb, trial._trial_id, heartbeat):
            genes = tuple(int(trial.suggest_categorical(n, o)) for n, o in decisions)
            genome = " ".join(map(str, genes))
            history = rdb.get_trial_system_attrs(trial._trial_id).get("retry_history", [])
            status, owner = claims.take(genome, trial.number, history, budget)
            if status != "mine":
                dupes += status == "duplicate"
                row = claims.row(genome) if status == "duplicate" else None
                trial.set_user_attr("roofline.duplicate_of" if status == "duplicate" else "roofline.over_budget", owner)
                if row is not None:  # the sampler learns the known value; nothing is evaluated
                    st.tell(trial, [row[c] for c, _ in objectives])
                else:
                    st.tell(trial, state=optuna.trial.TrialState.PRUNED)
                continue
            dupes = 0
            try:
                row = _evaluate(space, score, genes)
            except BaseException:
                claims.release(trial.number)
                st.tell(trial, state=optuna.trial.TrialState.FAIL)
                raise
            claims.finish(genome, trial.number, row)
        st.tell(trial, [row[c] for c, _ in objectives])
        evaluated += 1
    if dupes >= stall:
        warnings.warn(f"worker {index}: {stall} duplicate candidates in a row; stopping (is the space nearly spent?)",
                      stacklevel=2)  # fmt: skip
    return evaluated


def _slots_full(claims: _Claims, budget: int) -> bool:
    with claims.engine.connect() as con:
        b = claims.budget.c
        claimed = con.execute(claims.sa.select(b.claimed).where(b.study == claims.study)).scalar()
    return (claimed or 0) >= budget


def _evaluate(space, score, genes) -> dict:
    cand = space.candidate(genes)
    metrics = score([cand])
    if not isinstance(metrics, pd.DataFrame):
        metrics = pd.DataFrame({"score": np.asarray(metrics, dtype=float)})
    values = {k: float(v) for k, v in metrics.iloc[0].to_dict().items()}
    if not all(math.isfinite(v) for v in values.values()):
        raise InvalidParameterError(f"the score of {cand.genes} is not finite: {values}")
    return {"genes": " ".join(map(str, cand.genes)), "spec": cand.spec, "resolution": int(cand.resolution), **values}


def load_results(storage: str, study: str = "roofline") -> pd.DataFrame:
    """The study's evaluated candidates in order of completion, as ``roofline.search.search`` gives
    them (step, genes, spec, resolution, metrics, score; ``attrs["best"]`` the best score)."""
    rows = _Claims(storage, study).rows()
    df = pd.DataFrame([{"step": i, **r} for i, r in enumerate(rows)])
    if df.empty:
        return pd.DataFrame(columns=["step", "genes", "spec", "resolution", "score"])
    df["genes"] = [tuple(int(g) for g in str(t).split()) for t in df["genes"]]
    df = df[[c for c in df.columns if c != "score"] + ["score"]]
    df.attrs.update(best=df.loc[df["score"].idxmax()].to_dict(), storage=safe_url(storage), study=study)
    return df


def _child(kwargs) -> None:
    run_worker(**kwargs)


def distributed_search(space, score, storage: str, budget: int = 100, workers: int = 1, study: str = "roofline",
                       sampler: str = "tpe", seed: int = 0, on_progress=None, **options) -> pd.DataFrame:  # fmt: skip
    """Evaluate ``budget`` distinct candidates of ``space`` with ``score`` over ``workers`` local processes
    sharing the Optuna ``storage`` (a URL); the results table as ``load_results`` gives it (``attrs``:
    best, strategy, budget, seed). Run it again with the same storage and ``study`` to resume, with a
    larger budget to continue. ``options`` go to ``run_worker`` (heartbeat, grace, max_retry, stall,
    settings). With ``workers > 1`` the score must survive ``fork`` (Linux) or pickling (elsewhere);
    ``on_progress(done, budget)`` is called in this process as candidates finish."""
    if workers < 1:
        raise InvalidParameterError(f"workers must be >= 1, got {workers}")
    kwargs = dict(space=space, score=score, storage=storage, budget=budget, study=study, sampler=sampler, seed=seed,
                  **options)  # fmt: skip
    if workers == 1:
        run_worker(**kwargs, on_progress=on_progress)
    else:
        _run_processes(kwargs, workers, on_progress)
    df = load_results(storage, study)
    df.attrs.update(strategy=f"distributed {sampler}", budget=budget, seed=seed)
    return df


def _run_processes(kwargs: dict, workers: int, on_progress) -> None:
    import multiprocessing

    # the study and tables once, before the workers race for them; no connection is left open across fork
    _, rdb, _, claims, _ = _open(kwargs["space"], kwargs["score"], kwargs["storage"], kwargs["study"],
                                 kwargs["sampler"], kwargs["seed"], 0, 60, None, 3, kwargs.get("settings"))  # fmt: skip
    rdb.remove_session()
    rdb.engine.dispose()
    claims.engine.dispose()
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() and os.name == "posix" else "spawn"
    ctx = multiprocessing.get_context(method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: ours start in the children only
        procs = [ctx.Process(target=_child, args=({**kwargs, "index": i},)) for i in range(workers)]
        for p in procs:
            p.start()
    claims = _Claims(kwargs["storage"], kwargs["study"]) if on_progress else None
    try:
        while any(p.is_alive() for p in procs):
            if claims is not None:
                on_progress(claims.done(), min(kwargs["budget"], kwargs["space"].size))
            for p in procs:
                p.join(timeout=1.0 / len(procs))
    except BaseException:
        for p in procs:
            p.terminate()
        raise
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise RuntimeError(f"{len(failed)} of {workers} workers failed (exit codes {failed}); their errors are above")
