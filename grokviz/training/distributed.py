"""Sweeps past one process: member groups as Ray tasks (``--ray ADDRESS|local``), and resumable sweeps
(``--resume``), for ``grokviz.ensemble``. The batched loop itself is ``grokviz.training.ensemble``.

A sweep is cut into the in-process ensemble's own groups (:func:`~grokviz.training.members.plan_groups`:
members with training sets of one size, ``--group-size`` at a time) and each group is one call of
:func:`train_group`, which trains it exactly as the in-process ensemble does: on Ray, one task per
group, asking for one GPU where the cluster has GPUs and ``--threads`` CPUs (default 1) otherwise.

Where results go: **the workers write them**, straight into the member folders of the sweep, so the
sweep folder must be on a filesystem that every node sees at the same path (NFS or the like; on one
machine, any folder). The driver writes ``sweep.json`` and every member's ``run.json`` first, so
the folder opens as a sweep from the start and the app follows it as members' logs and
checkpoints land; a task refuses to start where it cannot see ``sweep.json``.

Faults: every group writes its members' resume state (``resume.safetensors``: fp32 weights and
AdamW moments, as the single run's) every ``save_every`` steps. A task whose worker dies is re-run
by Ray (``MAX_RETRIES`` times) and starts from that state; ``--resume`` re-plans a sweep folder
and trains only the members that are missing or unfinished, each from its own resume state where
one was written. Ctrl-C on the driver cancels the tasks; the folder stays an openable sweep.
"""

from __future__ import annotations

import os
from pathlib import Path

from grokviz.core.config import Config
from grokviz.errors import GrokvizError
from grokviz.storage.resume import RESUME_FILE, load_resume_state
from grokviz.storage.runs import SWEEP_FILE, open_run, require_new_folder, write_run_file
from grokviz.storage.sweeps import member_name, open_sweep, write_sweep_file
from grokviz.training.device import configure_cpu, keep_freed_memory, pick_device
from grokviz.training.ensemble import EnsembleOptions, check_members, precision, sweep_axes, trainer_of
from grokviz.training.members import MemberState, plan_groups
from grokviz.training.memory import estimate_sweep


def plan_of(configs: list, group_size: int | None) -> list[list[int]]:
    """The in-process ensemble's groups of the family of ``configs`` (adder members: one shape each)."""
    if configs and configs[0].family == "digits":
        from grokviz.training.digits_members import plan_digits_groups

        return plan_digits_groups(configs, group_size)
    return plan_groups(configs, group_size)


# Re-runs of a group whose worker died (Ray's system failures; an error the task raises is not retried).
MAX_RETRIES = 3
# Test hook: a file path. The first group to save a resume state, if that file does not exist yet,
# creates it and kills its own worker process (tests of the retry; never set otherwise).
DIE_ONCE_ENV = "GROKVIZ_TEST_DIE_ONCE"
RAY_MISSING = "--ray needs Ray, an optional extra of grokviz: pip install 'grokviz[ray]'"


# --- one group, wherever it runs ---------------------------------------------------------------


def finished(folder: Path, cfg: Config) -> bool:
    """Whether a member's folder holds its whole run: a log row and a checkpoint at its last step."""
    try:
        run = open_run(folder)
        log = run.log()
        return (
            run.config == cfg and len(log) > 0 and int(log["step"].iloc[-1]) == cfg.steps and cfg.steps in run.steps()
        )
    except GrokvizError:
        return False


def saved_step(folder: Path) -> int | None:
    """The step of a member's resume state, None without one (or with one that does not read)."""
    if not (folder / RESUME_FILE).is_file():
        return None
    try:
        return load_resume_state(folder)[0]
    except GrokvizError:
        return None


def saved_start(configs: list[Config], folders: list[Path]) -> tuple[int, list[MemberState]] | None:
    """Where a group continues: every member's resume state, if all have one of the same step, else None
    (a worker killed while it wrote them leaves steps that differ: the group starts afresh)."""
    steps = {saved_step(folder) for folder in folders}
    if len(steps) != 1 or None in steps:
        return None
    step = steps.pop()
    if not 0 < step < configs[0].steps:
        return None
    return step, [load_resume_state(folder)[1:] for folder in folders]


def _die_once_hook():
    marker = os.environ.get(DIE_ONCE_ENV)
    if not marker:
        return None

    def hook(step: int) -> None:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # atomic: one group only
        except FileExistsError:
            return
        os.write(fd, f"{os.getpid()} died after the resume state of step {step}\n".encode())
        os.close(fd)
        os._exit(1)  # as a killed worker: no cleanup, no exception

    return hook


def train_group(
    configs: list[Config],
    folders: list[Path],
    *,
    save: str,
    device: str,
    threads: int | None,
    use_graphs: bool,
    compile: bool = False,
) -> list[str]:
    """Train one group into its member folders, from its resume state where it has one; returns their names."""
    folders = [Path(f) for f in folders]
    sweep = folders[0].parent
    if not (sweep / SWEEP_FILE).is_file():
        raise GrokvizError(
            f"{sweep}: no {SWEEP_FILE} seen from this worker; --ray needs the sweep folder on a filesystem "
            "that every node sees at the same path"
        )
    dev = pick_device(device)
    if dev.type == "cpu":
        configure_cpu(threads)
        keep_freed_memory()
    start = saved_start(configs, folders)
    with precision(configs[0], dev):
        trainer_of(configs[0], compile)(
            configs,
            folders,
            dev,
            save,
            False,
            use_graphs,
            None,
            resume_every=configs[0].save_every,
            start=start,
            on_state_saved=_die_once_hook(),
        )
    return [f.name for f in folders]


# --- the driver ---------------------------------------------------------------------------------


def prepare(
    configs: list[Config], out: Path, axes: dict | None, group_size: int | None, resume: bool
) -> list[list[int]]:
    """Write ``sweep.json`` and every member's ``run.json`` (a new folder, or check the one resumed) and
    return the groups still to train, as member indices."""
    check_members(configs)
    folders = [out / member_name(c) for c in configs]
    if resume:
        sweep = open_sweep(out)  # refuses a folder that is not a sweep, naming it
        names = [m.name for m in sweep.members]
        if names != [f.name for f in folders]:
            extra = sorted(set(names) - {f.name for f in folders})
            missing = sorted({f.name for f in folders} - set(names))
            raise GrokvizError(
                f"{out}: --resume needs the sweep's own grid; it has members {extra[:3]} the flags do not give"
                f" and the flags give {missing[:3]} it does not have"
            )
        for folder, cfg in zip(folders, configs):
            if (folder / "run.json").is_file() and open_run(folder).config != cfg:
                raise GrokvizError(f"{folder}: --resume needs the member's own config; it differs from the flags'")
        todo = [i for i, (folder, cfg) in enumerate(zip(folders, configs)) if not finished(folder, cfg)]
    else:
        require_new_folder(out, other_choice=" or pass --resume")
        out.mkdir(parents=True, exist_ok=True)
        write_sweep_file(out, configs, axes or sweep_axes(configs))
        todo = list(range(len(configs)))
    for i in todo:
        write_run_file(folders[i], configs[i], source="grokviz.ensemble")
    # The in-process groups; on --resume, among the members left, and only members that continue from
    # one step share a group.
    by_start: dict[int, list[int]] = {}
    for i in todo:
        by_start.setdefault(saved_step(folders[i]) or 0, []).append(i)
    return [
        [same[j] for j in group]
        for same in by_start.values()
        for group in plan_of([configs[i] for i in same], group_size)
    ]


def run_sweep(
    configs: list[Config],
    out: str | Path,
    *,
    axes: dict | None = None,
    resume: bool = False,
    ray_address: str | None = None,
    local_cpus: int | None = None,
    **options,
) -> list[Path]:
    """Train the sweep ``configs`` into ``out`` group by group: in this process (``ray_address`` None)
    or as Ray tasks (``"local"``: a Ray instance started for the run, with ``local_cpus`` CPUs; else
    the address of a running cluster). ``resume`` trains only the members not finished in ``out``.
    ``options``: the fields of :class:`~grokviz.training.ensemble.EnsembleOptions`, as
    ``train_ensemble`` takes them. One progress bar counts members. Returns every member's folder."""
    opts = EnsembleOptions(**options)
    out = Path(out)
    ray = ray_module() if ray_address is not None else None
    # Ray first: a cluster that cannot be reached leaves no sweep folder behind.
    started = _connect(ray, ray_address, local_cpus) if ray is not None else False
    from tqdm import tqdm

    bar = None
    try:
        groups = prepare(configs, out, axes, opts.group_size, resume)
        folders = [out / member_name(c) for c in configs]
        left = sum(len(g) for g in groups)
        bar = tqdm(
            total=len(configs),
            initial=len(configs) - left,
            disable=not opts.progress,
            unit="member",
            dynamic_ncols=True,
        )
        if ray is None:
            for group in groups:
                train_group(
                    [configs[i] for i in group],
                    [folders[i] for i in group],
                    save=opts.save,
                    device=opts.device,
                    threads=opts.threads,
                    use_graphs=opts.use_graphs,
                    compile=opts.compile,
                )
                bar.update(len(group))
        elif groups:
            _run_on_ray(ray, ray_address, groups, configs, folders, bar, opts)
    finally:
        if bar is not None:
            bar.close()
        if started:
            ray.shutdown()
    return folders


def ray_module():
    try:
        import ray
    except ImportError:
        raise GrokvizError(RAY_MISSING) from None
    return ray


def _connect(ray, address: str, local_cpus: int | None) -> bool:
    """Join (or start, for "local") a Ray instance; True if this call started it (and must stop it)."""
    if ray.is_initialized():
        return False  # a caller's own (tests start one local instance for all their sweeps)
    options = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        if address == "local":
            # Workers import grokviz from where this process does (a checkout need not be installed).
            root = str(Path(__file__).resolve().parents[2])
            path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
            ray.init(num_cpus=local_cpus, runtime_env={"env_vars": {"PYTHONPATH": path}}, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        hint = ""
        if address not in ("local", "auto") and "RAY_AUTH_MODE" not in os.environ:
            # Ray (2.60 on) starts clusters with token authentication and, by design, sends the
            # token to an explicit address only when asked to.
            hint = (
                "; a cluster started by `ray start` wants its token: set RAY_AUTH_MODE=token with the token"
                " in ~/.ray/auth_token or RAY_AUTH_TOKEN, or use --ray auto on one of its nodes"
            )
        raise GrokvizError(
            f"--ray {address}: could not start or join Ray ({' '.join(str(exc).split())}){hint}"
        ) from None
    return True


def _run_on_ray(ray, address, groups, configs, folders, bar, opts: EnsembleOptions) -> None:
    device, threads = opts.device, opts.threads
    gpus = ray.cluster_resources().get("GPU", 0)
    if device == "cuda" and gpus < 1:
        raise GrokvizError(f"--device cuda: the Ray cluster at {address} has no GPU")
    on_gpu = gpus >= 1 and device != "cpu"
    resources = {"num_gpus": 1, "num_cpus": 1} if on_gpu else {"num_cpus": threads or 1}
    if os.environ.get(DIE_ONCE_ENV):  # the test hook reaches workers started before it was set
        resources["runtime_env"] = {"env_vars": {DIE_ONCE_ENV: os.environ[DIE_ONCE_ENV]}}
    task = ray.remote(_ray_task).options(max_retries=MAX_RETRIES, retry_exceptions=False, **resources)
    groups = largest_first(groups, configs)
    pending = {
        task.remote(
            [configs[i] for i in group],
            [str(folders[i]) for i in group],
            opts.save,
            "cuda" if on_gpu else "cpu",
            threads or (None if on_gpu else 1),
            opts.use_graphs,
            opts.compile,
        ): group
        for group in groups
    }
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                group = pending.pop(ref)
                _result(ray, ref, [folders[i].name for i in group])
                bar.update(len(group))
    except BaseException:
        # Ctrl-C (or a failed group): stop the others; what they wrote stays a loadable sweep.
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def largest_first(groups: list[list[int]], configs: list) -> list[list[int]]:
    """``groups`` in the order Ray should start them: the most activation memory (a proxy for the
    time a step takes) first. With fewer workers than groups the longest tasks then start first and
    the sweep ends sooner: submitted in grid order, the 12 groups of ``checkpoints/adder-cliff`` on
    2 cores left one d 8 group running alone for its last minutes."""
    cost = lambda group: len(group) * estimate_sweep([configs[group[0]]]).activations  # noqa: E731
    return sorted(groups, key=cost, reverse=True)


def _ray_task(configs, folders, save, device, threads, use_graphs, compile=False) -> list[str]:
    return train_group(
        configs, folders, save=save, device=device, threads=threads, use_graphs=use_graphs, compile=compile
    )


def _result(ray, ref, names: list[str]) -> None:
    from ray import exceptions

    try:
        ray.get(ref)
    except exceptions.RayTaskError as exc:
        cause = exc.as_instanceof_cause()
        if isinstance(cause, GrokvizError):
            raise GrokvizError(str(exc.cause)) from None
        raise
    except (exceptions.WorkerCrashedError, exceptions.NodeDiedError) as exc:
        raise GrokvizError(
            f"group {names[0]}..: its worker died {MAX_RETRIES + 1} times ({type(exc).__name__});"
            " rerun with --resume to continue the sweep"
        ) from None
