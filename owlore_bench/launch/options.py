"""`owlore-bench run`'s launcher flags, and the Launcher they choose (one line for every bad combination)."""

from __future__ import annotations

import shlex

from owlore_bench.errors import UserError
from owlore_bench.launch.base import Launcher, SubmitOptions
from owlore_bench.train.distributed import launched_by_torchrun

LAUNCHERS = ("local", "submitit")
PIP_HINT = "pip install 'owlore-bench[cluster]' (or: pip install submitit)"


# flag → (SubmitOptions field, type, smallest allowed value, help without the default); metavar: _METAVARS
_SUBMITIT_FLAGS = {
    "--cluster": ("cluster", str, None, "where the jobs run: slurm, local (background processes on this machine) "
                                        "or debug (in this process, one after another)"),
    "--partition": ("partition", str, None, "SLURM partition of the unit jobs"),
    "--gpus-per-unit": ("gpus_per_unit", int, 0, "GPUs per unit job; G > 1 trains each unit data parallel on G "
                                                 "processes; 0 = CPU-only jobs"),
    "--nodes-per-unit": ("nodes_per_unit", int, 1, "nodes per unit job: the unit trains on N x G processes "
                                                   "(with --parallel fsdp, sharded over all of them)"),
    "--cpus-per-unit": ("cpus_per_unit", int, 1, "CPU cores per unit job"),
    "--mem-gb": ("mem_gb", float, 1, "memory per unit job in GB"),
    "--timeout-min": ("timeout_min", int, 1, "wall-clock limit per job in minutes; a job that times out requeues "
                                             "and resumes from its checkpoint"),
    "--slurm-array-parallelism": ("array_parallelism", int, 1, "at most K unit jobs running at once"),
}
_METAVARS = {"--cluster": "NAME", "--partition": "P", "--gpus-per-unit": "G", "--nodes-per-unit": "N",
             "--cpus-per-unit": "C",
             "--mem-gb": "GB", "--timeout-min": "M", "--slurm-array-parallelism": "K"}


def add_launcher_arguments(parser) -> None:
    group = parser.add_argument_group("where the units run")
    group.add_argument("--launcher", choices=LAUNCHERS,
                       help="local: here, one unit after another (default); submitit: one cluster job per unit "
                            "(method x seed). Without --launcher, units held by earlier cluster jobs are only "
                            "collected, never rerun here")
    defaults = SubmitOptions()
    for flag, (dest, kind, _, text) in _SUBMITIT_FLAGS.items():
        default = getattr(defaults, dest)
        shown = f"default {default}" if default is not None else "default: the cluster's"
        group.add_argument(flag, dest=dest, type=kind, metavar=_METAVARS[flag], help=f"[submitit] {text} ({shown})")
    group.add_argument("--slurm-option", dest="slurm_options", action="append", metavar="KEY=VALUE",
                       help="[submitit] any other sbatch option, e.g. --slurm-option account=myproj "
                            "--slurm-option qos=high (repeatable)")
    group.add_argument("--wait", action="store_true",
                       help="[submitit] wait for every job to end, then write the tables")


def make_launcher(args, command: str) -> Launcher:
    """The launcher the flags ask for; `command` is the user's `owlore-bench run CONFIG [--out OUT]`."""
    given = [flag for flag, (dest, *_) in _SUBMITIT_FLAGS.items() if getattr(args, dest, None) is not None]
    given += ["--slurm-option"] * bool(args.slurm_options) + ["--wait"] * bool(args.wait)
    if args.launcher != "submitit":
        if given:
            raise UserError(f"{given[0]}: only used with --launcher submitit")
        from owlore_bench.launch.local import LocalLauncher

        return LocalLauncher(takes_over_ended_jobs=args.launcher == "local")
    if getattr(args, "nproc", None) is not None or launched_by_torchrun():
        raise UserError("--launcher submitit: submits from one process; drop --nproc (or torchrun) and set "
                        "--gpus-per-unit, the processes of each unit's job")
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise UserError(f"--launcher submitit needs the submitit package: {PIP_HINT}") from None
    from owlore_bench.launch.submitit_jobs import SubmititLauncher, check_cluster_reachable

    options = submit_options(args)
    check_cluster_reachable(options.cluster)
    if options.nodes_per_unit > 1 and options.cluster != "slurm":
        raise UserError(f"--nodes-per-unit {options.nodes_per_unit}: only SLURM spreads a job over nodes; --cluster "
                        f"{options.cluster} runs on this machine; use --nodes-per-unit 1")
    return SubmititLauncher(options, command)


def submit_options(args) -> SubmitOptions:
    """SubmitOptions from the flags that were given (SubmitOptions' defaults for the others), each number checked."""
    given = {}
    for flag, (dest, _, least, _) in _SUBMITIT_FLAGS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if least is not None and value < least:
            raise UserError(f"{flag}: {value} is below {least}; e.g. {flag} {max(least, 1)}")
        given[dest] = value
    return SubmitOptions(**given, slurm_options=parse_slurm_options(args.slurm_options or []), wait=args.wait)


def parse_slurm_options(pairs: list[str]) -> dict[str, str]:
    """['account=proj', 'qos=high'] → {'account': 'proj', 'qos': 'high'} (sbatch's long option names)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--slurm-option {pair!r}: expected KEY=VALUE, e.g. --slurm-option account=myproj")
        options[key.strip().removeprefix("--").replace("-", "_")] = value
    return options


def collect_command(config: str, out: str | None) -> str:
    """The command that collects a submitted sweep: `owlore-bench run CONFIG [--out OUT]`."""
    return shlex.join(["owlore-bench", "run", config, *(["--out", out] if out else [])])
