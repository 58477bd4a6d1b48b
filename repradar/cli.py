"""The `repradar` console script: one sub-command per stage.

Exit status: 0 success, 2 user error (bad arguments, bad input data, refused promotion), 1 otherwise.
Heavy imports happen inside the commands so `repradar --help` stays fast.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from repradar.errors import UserError

app = typer.Typer(
    help="RepRadar: early warning for sales reps drifting off target.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"repradar {version('repradar')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Say the installed version."),
    ] = False,
) -> None:
    """RepRadar: early warning for sales reps drifting off target."""


def _user_errors(fn):
    """Turn UserError, and a REPRADAR_ setting that does not read, into exit status 2 with the message on stderr."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from pydantic import ValidationError

        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except ValidationError as exc:
            if exc.title not in SETTINGS_PREFIX:
                raise
            typer.echo(f"error: {_settings_problem(exc)}", err=True)
            raise typer.Exit(2) from None
        except Exception as exc:
            refused = _refused_by_mlflow(exc)
            if refused is None:
                raise
            typer.echo(f"error: {refused}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _refused_by_mlflow(exc: Exception) -> str | None:
    """What to do when the MLflow server refused the credentials (401) or the action (403); None for any
    other error. Wrong or missing credentials are the user's to fix, not an internal error. Checked by
    module and code, so that commands that never touch MLflow do not import it."""
    code = getattr(exc, "error_code", "")
    if not type(exc).__module__.startswith("mlflow") or code not in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return None
    what = (
        "refused the credentials (HTTP 401)"
        if code == "UNAUTHENTICATED"
        else "refused this action to these credentials (HTTP 403)"
    )
    return (
        f"the MLflow server at REPRADAR_MLFLOW_TRACKING_URI / REPRADAR_MLFLOW_REGISTRY_URI {what}: "
        f"{str(exc).splitlines()[0]}. Set the credentials MLflow sends (MLFLOW_TRACKING_TOKEN, or "
        "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD; for Databricks, DATABRICKS_TOKEN or the "
        "profile's) to ones the server accepts"
        + (
            ", with the permission this command needs, and start again"
            if code == "PERMISSION_DENIED"
            else ", and start again"
        )
    )


# the settings classes read from the environment (their pydantic title) and their variables' prefix
SETTINGS_PREFIX = {
    "Settings": "REPRADAR_",
    "ReportSettings": "REPRADAR_REPORT_",
    "AlertSettings": "REPRADAR_ALERTS_",
}


def _settings_problem(exc) -> str:
    """Which REPRADAR_ variables do not read, and why (their values are not repeated: some hold passwords)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        name = SETTINGS_PREFIX[exc.title] + "_".join(str(p) for p in err["loc"]).upper()
        parts.append(f"{name}: {err['msg']}")
    return "; ".join(parts) + " (fix the environment variable, then start again)"


# said when a command has shown nothing for 2 s: importing these is most of a slow start
STARTING = "starting: loading MLflow, LightGBM and DuckDB ..."


def _progress(fn):
    """Show the stages of a long command on stderr as they start (repradar.progress), and a line
    when nothing was said within 2 s of the start."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from repradar.progress import shown

        with shown(waiting=STARTING):
            return fn(*args, **kwargs)

    return wrapper


DataDir = Annotated[
    Path,
    typer.Option("--data", help="Folder of contract tables (CSV or Parquet).", file_okay=False),
]

# Commands that can run on Spark also read URIs and catalog databases there (docs/spark.md).
DataSource = Annotated[
    str,
    typer.Option(
        "--data",
        help="Folder of contract tables (CSV or Parquet); with --engine spark also a URI "
        "(s3a://, hdfs://, abfss://, file://) or catalog:<database>.",
    ),
]

EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="Feature engine: duckdb (in process) or spark (active session, SPARK_MASTER, else local[2]).",
    ),
]

# The language of what `report` and `alerts` write for people (models.i18n.LANGUAGES).
LangOpt = Annotated[
    str,
    typer.Option(
        "--lang",
        help="Language of the texts written for people: en (English) or zh-CN (Simplified Chinese).",
    ),
]


def _lang(value: str) -> str:
    """--lang as a language of models.i18n ("zh-cn" and "zh_CN" read as zh-CN); anything else is refused."""
    from models.i18n import language

    try:
        return language(value)
    except ValueError as exc:
        raise UserError(f"--lang {exc}; pass one of them") from None


def _engine(name: str):
    """The feature engine for --engine (None: the default DuckDB engine)."""
    name = name.strip().lower()
    if name == "duckdb":
        return None
    if name == "spark":
        try:
            from features.spark_engine import SparkEngine
        except ImportError as exc:  # pyspark is the optional extra `spark`
            raise UserError(f"--engine spark needs pyspark: `uv sync --extra spark` ({exc})") from None
        return SparkEngine()
    raise UserError(f"--engine {name!r}: choose duckdb or spark")


def _local_folder(data: str) -> Path:
    """--data for the default engine: a local folder (URIs and catalogs only Spark reads)."""
    from features.io import is_uri

    if is_uri(data):
        raise UserError(f"--data {data}: URIs and catalog databases are read with --engine spark")
    return Path(data)


def _tables(data: str, engine):
    """The source's tables, checked against the contract: pandas for DuckDB, read on Spark for Spark."""
    from features.io import load_folder

    if engine is None:
        return load_folder(_local_folder(data))
    from features.spark_io import load_spark_tables

    return load_spark_tables(engine.spark, data)


def _check_out(out: str, engine, suffixes: tuple[str, ...]) -> None:
    """Refuse an output the command cannot write before any work is done."""
    from features.io import is_uri

    if is_uri(out):
        if engine is None:
            raise UserError(f"--out {out}: URIs are written with --engine spark")
        if out.startswith("catalog:"):
            raise UserError(f"--out {out}: write a Parquet path or URI; catalog tables are not written")
        return
    if Path(out).suffix.lower() not in suffixes:
        raise UserError(f"--out {out}: name the file {' or '.join(suffixes)}")
    _check_writable(Path(out))


def _check_writable(out: Path) -> None:
    """Refuse, before any work, an output whose folder cannot be written (read-only, not a folder, no
    permission): else the command would find out only when writing, after all of its work."""
    from repradar.files import NOT_A_FOLDER, unwritable

    if problem := unwritable(out):
        folder, why = problem
        if why == NOT_A_FOLDER:
            raise UserError(f"--out {out}: {folder} is a file, not a folder; choose another path")
        raise UserError(f"--out {out}: cannot write in {folder} ({why}); choose a folder you may write to")


@contextlib.contextmanager
def _writing(out) -> Iterator[None]:
    """An output that fails while being written (a full disk) is exit 2 saying so, not an internal error;
    the writers leave nothing half-written behind."""
    try:
        yield
    except OSError as exc:
        raise UserError(
            f"could not write {out}: {exc.strerror or exc}; nothing was written there. Free space on its disk "
            "(or choose another --out) and run the command again"
        ) from None


def _write_uri(engine, table, out: str) -> None:
    """An Arrow table written by Spark as a Parquet dataset at `out` (replaced whole)."""
    engine.spark.createDataFrame(table).write.mode("overwrite").parquet(out)


@app.command()
@_user_errors
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the organisation into.")],
    reps: Annotated[int, typer.Option(min=4, help="Number of sales reps.")] = 200,
    periods: Annotated[int, typer.Option(min=2, help="Number of quarterly quota periods.")] = 8,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files.")] = 0,
    start: Annotated[
        dt.datetime,
        typer.Option(formats=["%Y-%m-%d"], help="First day of the first period (YYYY-MM-DD)."),
    ] = "2023-01-01",  # type: ignore[assignment] - parsed like the option; --help shows this date
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    bias_quota_against: Annotated[
        str | None,
        typer.Option(help="Give this gender value harder quotas (for fairness-audit tests)."),
    ] = None,
) -> None:
    """Write a synthetic sales organisation in the input contract, with its hidden truth in truth/."""
    from simulator.simulate import SimConfig
    from simulator.simulate import simulate as run

    cfg = SimConfig(
        n_reps=reps,
        n_periods=periods,
        seed=seed,
        start=start.date(),
        fmt=fmt,
        bias_quota_against=bias_quota_against,
    )
    summary = run(cfg, out)
    for key, value in summary.items():
        typer.echo(f"{key}: {value}")


@app.command()
@_user_errors
def validate(data: DataSource, engine: EngineOpt = "duckdb") -> None:
    """Check a folder against every rule of the data contract; exit 2 if any is broken."""
    from features.validation import validate_folder

    eng = _engine(engine)
    if eng is not None:
        from features.spark_io import validate_source

        report = validate_source(eng.spark, data)
    else:
        report = validate_folder(_local_folder(data))
    typer.echo(report.render())
    if not report.ok:
        raise typer.Exit(2)


@app.command("import")
@_user_errors
def import_(
    mapping: Annotated[
        str, typer.Option("--mapping", help="Mapping YAML file, or a shipped one: salesforce, maven_crm.")
    ],
    source: Annotated[
        Path, typer.Option("--source", help="Folder holding the export's files.", file_okay=False)
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Contract folder to write (absent or empty unless --force).")
    ],
    quota_policy: Annotated[
        str | None,
        typer.Option(help="Derive quotas, e.g. fixed,amount=100000,period=quarter (docs/import.md)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    force: Annotated[
        bool, typer.Option("--force", help="Replace --out once the new folder is valid.")
    ] = False,
) -> None:
    """Map a CRM export onto the data contract with a mapping file; write it atomically and validate it."""
    from importer.run import import_command

    for line in import_command(mapping, source, out, quota_policy=quota_policy, fmt=fmt, force=force):
        typer.echo(line)


@app.command("build-training-set")
@_user_errors
def build_training_set(
    data: DataSource,
    out: Annotated[
        str, typer.Option("--out", help="Parquet (or CSV) file to write; with --engine spark also a URI.")
    ],
    every_days: Annotated[int, typer.Option(min=1, help="Days between snapshots.")] = 7,
    engine: EngineOpt = "duckdb",
) -> None:
    """Build snapshots at regular points of every finished period, with features and labels."""
    import pyarrow as pa

    from features.build import build_training_set as build
    from features.io import is_uri, write_table

    eng = _engine(engine)
    _check_out(out, eng, (".parquet", ".csv"))
    ts = build(_tables(data, eng), every_days=every_days, engine=eng)
    if is_uri(out):
        _write_uri(eng, pa.Table.from_pandas(ts.frame, preserve_index=False), out)
    else:
        write_table(ts.frame, Path(out))
    for line in ts.summary_lines():
        typer.echo(line)
    typer.echo(f"wrote {out}")


def _overrides(params: dict | None) -> str:
    """A version's `--param` overrides as typed ('-' for none, '?' when trained before they were kept)."""
    import json

    if params is None:
        return "?"
    return " ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in params.items()) or "-"


def _parse_params(items: list[str] | None) -> dict:
    """KEY=VALUE pairs into LightGBM parameters (numbers parsed as numbers)."""
    import json

    params = {}
    for item in items or []:
        if "=" not in item:
            raise UserError(f"--param {item!r}: write it as KEY=VALUE, e.g. --param num_leaves=31")
        key, value = (part.strip() for part in item.split("=", 1))
        if not key or not value:
            # An empty value reached LightGBM as '' (its default used, '' logged as the parameter).
            raise UserError(
                f"--param {item!r}: give both a name and a value as KEY=VALUE, e.g. --param num_leaves=31"
            )
        if key in params:
            raise UserError(f"--param {key}: given twice; keep the one you mean")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


@app.command()
@_user_errors
@_progress
def train(
    data: DataSource,
    every_days: Annotated[
        int | None, typer.Option(min=1, help="Days between training snapshots (default: setting).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: setting).")] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="LightGBM parameter override KEY=VALUE (repeatable).")
    ] = None,
    engine: EngineOpt = "duckdb",
) -> None:
    """Train on all finished periods, evaluate on the newest, log to MLflow, register a challenger."""
    import signal

    from repradar.settings import get_settings
    from training.pipeline import stop_on_signals
    from training.pipeline import train as run

    eng = _engine(engine)
    try:
        with stop_on_signals():
            if eng is None:
                result = run(
                    _local_folder(data),
                    get_settings(),
                    params=_parse_params(param),
                    every_days=every_days,
                    seed=seed,
                )
            else:
                result = _train_with_engine(data, eng, _parse_params(param), every_days, seed)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM (training.pipeline.Stopped)
        signum = getattr(exc, "signum", signal.SIGINT)
        run_id = getattr(exc, "run_id", None)
        done = (
            f"the MLflow run {run_id} is ended as KILLED and no version was registered"
            if run_id
            else "no MLflow run was open, so nothing is half logged or registered"
        )
        typer.echo(f"error: training stopped by {signal.Signals(signum).name}: {done}", err=True)
        raise typer.Exit(128 + signum) from None  # the shell's convention: 130 for SIGINT, 143 for SIGTERM
    for line in result.summary_lines():
        typer.echo(line)


def _train_with_engine(data: str, engine, params: dict, every_days: int | None, seed: int | None):
    """`training.pipeline.train` with the tables read and the training set built by `engine`."""
    from features.build import build_training_set as build
    from features.io import is_uri
    from repradar.settings import get_settings
    from training.evaluate import load_oracle
    from training.pipeline import preflight, train_feature_set

    settings = get_settings()
    playbook = preflight(settings, params)  # before the build, as `train` does
    every = every_days or settings.snapshot_every_days
    fs = build(_tables(data, engine), every_days=every, miss_threshold=settings.miss_threshold, engine=engine)
    oracle = None if is_uri(data) else load_oracle(data)  # the simulator's truth/ folder, local only
    return train_feature_set(
        fs,
        settings,
        source=data,
        oracle=oracle,
        params=params,
        seed=seed,
        every_days=every,
        playbook=playbook,
    )


def _version_number(text: str) -> str:
    """A registered version as typed to --version: a positive whole number ('' or 'v3' was looked up and
    reported as 'has no version ;'), at most what a store's integer column holds (more was the store's
    internal error). Refused before anything is recorded."""
    value = text.strip()
    if not (value.isascii() and value.isdigit() and 0 < int(value) <= 2_147_483_647):
        raise UserError(
            f"--version {text!r} is not a version number; give one such as --version 3 "
            "(`repradar models` lists them), or leave it out to promote the challenger"
        )
    return str(int(value))


@app.command()
@_user_errors
@_progress
def promote(
    version: Annotated[
        str | None, typer.Option("--version", help="Version to promote (default: the challenger).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote even if the gate refuses (needs --reason).")
    ] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why; recorded on the version.")] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Only compare the version with the champion on the same held-out rows and say what the "
            "gate would decide (exit 0 if it would pass, 2 if not); nothing is recorded or moved.",
        ),
    ] = False,
) -> None:
    """Make a version the champion if the promotion gate passes (exit 2 with the figures if not)."""
    from models.gate import promote as run
    from repradar.settings import get_settings
    from serving.admin import audited_promotion
    from serving.schemas import text_problem

    if version is not None:
        version = _version_number(version)
    if force and dry_run:
        raise UserError("--dry-run checks what the gate would decide: it takes no --force")
    if force and not (reason and reason.strip()):
        raise UserError("--force needs --reason TEXT saying why the gate is overridden")
    if reason and (why := text_problem(reason, multiline=True)):
        raise UserError(f"--reason {why}")
    settings = get_settings()
    if dry_run:  # changes nothing, names no rep: not a promotion request for the trail
        result = run(settings, version=version, actor="cli", dry_run=True)
    else:
        result = audited_promotion(
            settings,
            version,
            force,
            reason,
            lambda: run(settings, version=version, force=force, reason=reason, actor="cli"),
        )
    if result.decision == "refused":
        typer.echo(result.message, err=True)
        raise typer.Exit(2)
    typer.echo(result.message)


@app.command()
@_user_errors
@_progress
def score(
    data: DataSource,
    as_of: Annotated[
        dt.datetime, typer.Option("--as-of", formats=["%Y-%m-%d"], help="Score as of this day.")
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out", help="Scores file to write (.parquet or .csv); with --engine spark also a URI."
        ),
    ],
    engine: EngineOpt = "duckdb",
    playbook: Annotated[
        Path | None,
        typer.Option(
            "--playbook",
            help="Playbook YAML to suggest interventions with instead of the model's own (docs/playbook.md).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Score every active rep's period containing the as-of day with the champion."""
    from features.io import is_uri
    from models.scoring import score_folder, write_scores
    from repradar.settings import get_settings

    eng = _engine(engine)
    _check_out(out, eng, (".parquet", ".csv"))
    settings = get_settings()
    if playbook is not None:
        settings = settings.model_copy(update={"playbook": playbook})
    if settings.playbook is not None:  # --playbook or REPRADAR_PLAYBOOK
        from models.playbook import load_playbook

        load_playbook(settings.playbook)  # refuse a broken file (with its line) before any scoring work
    if eng is None:
        df = score_folder(_local_folder(data), as_of.date(), settings)
    else:
        # Tables read and features built on Spark, then the champion over the Spark frame.
        from models.loading import load_model
        from models.spark_scoring import score_tables_spark

        df = score_tables_spark(_tables(data, eng), as_of.date(), load_model(settings), settings, eng.spark)
    if is_uri(out):
        from models.scoring import scores_arrow

        _write_uri(eng, scores_arrow(df), out)
    else:
        with _writing(out):
            write_scores(df, Path(out))
    for note in df.attrs.get("notes", []):
        typer.echo(f"note: {note}")
    bands = df["risk_band"].value_counts()
    typer.echo(
        f"scored {len(df)} reps as of {as_of.date()} with {settings.model_name} version "
        f"{df['model_version'].iat[0]}: "
        + ", ".join(f"{b} {int(bands.get(b, 0))}" for b in ("high", "medium", "low"))
    )
    typer.echo(f"wrote {out}")


@app.command("tune-playbook")
@_user_errors
@_progress
def tune_playbook(
    data: Annotated[
        list[Path],
        typer.Option(
            "--data",
            help="Folder of a simulated organisation with truth/ (repeat to tune on several at once).",
            file_okay=False,
            metavar="DIR",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the tuned playbook (YAML).", dir_okay=False)
    ],
    version: Annotated[
        list[str] | None,
        typer.Option(
            "--version",
            help="Model version whose scores the rules read (default: champion); once for every --data, "
            "or once per --data in the same order.",
            metavar="V",
        ),
    ] = None,
    playbook: Annotated[
        Path | None,
        typer.Option(
            "--playbook", help="Playbook to start from (default: the one the model bundles).", dir_okay=False
        ),
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, max=20, help="Rounds of the coordinate search.")] = 3,
) -> None:
    """Tune the playbook's strength weights on known causes of misses (simulated organisations' truth/)."""
    from features.build import build_training_set
    from features.io import load_folder
    from models.loading import load_model, load_version
    from models.playbook import default_playbook, load_playbook
    from repradar.settings import get_settings
    from training.cause_match import load_truth
    from training.playbook_tuning import Organisation, tune_on_data

    settings = get_settings()
    versions = list(version or [])
    if len(versions) not in (0, 1, len(data)):
        raise UserError(
            f"--version was given {len(versions)} times for {len(data)} --data folders: "
            "give it once (the same model for every folder) or once per --data, in the same order"
        )
    folders, truths = [], []
    for d in data:
        folder = _local_folder(str(d))
        if not folder.is_dir():
            raise UserError(
                f"data folder {str(folder)!r} does not exist; pass --data with a simulated organisation"
            )
        truth = load_truth(folder)
        if truth is None:
            raise UserError(
                f"{folder / 'truth' / 'rep_periods.parquet'} not found: tuning needs known causes of misses "
                "(rep_id, period_start, missed, dominant_cause), as the simulator writes them"
            )
        folders.append(folder)
        truths.append(truth)
    if playbook is not None:
        text = load_playbook(playbook).text  # refused here, with its line, before any work
    pairs = versions * len(data) if len(versions) == 1 else versions or [None] * len(data)
    models = {
        v: (load_version(settings, v) if v else load_model(settings)).pyfunc for v in dict.fromkeys(pairs)
    }
    if playbook is None:
        first = models[pairs[0]]
        text = (first.playbook_obj_ or default_playbook()).text
    orgs = []
    for folder, truth, v in zip(folders, truths, pairs, strict=True):
        typer.echo(f"building snapshots of {folder} ...")
        fs = build_training_set(
            load_folder(folder),
            every_days=settings.snapshot_every_days,
            miss_threshold=settings.miss_threshold,
        )
        orgs.append(Organisation(name=str(folder), frame=fs.frame, model=models[v], truth=truth))
    report = tune_on_data(
        orgs,
        text=text,
        band_high=settings.band_high,
        rounds=rounds,
        source=str(playbook or "bundled playbook"),
        progress=typer.echo,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.result.text, encoding="utf-8")
    for line in report.lines():
        typer.echo(line)
    if report.worse_heldout():
        typer.echo(f"wrote {out}; it did worse on held-out rows (above): compare before scoring with it")
    else:
        typer.echo(f"wrote {out}; score with it: REPRADAR_PLAYBOOK={out} repradar score ...")


def _early(figures: dict) -> str:
    """' AUC first 50% 0.8123' for a gate record with the early-period AUC (older records have none)."""
    v, share = figures.get("auc_early"), figures.get("early_share")
    if v is None or share is None or v != v:
        return ""
    return f" AUC first {share:.0%} {v:.4f}"


@app.command("models")
@_user_errors
@_progress
def models_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List registered model versions with held-out metrics, aliases and promotion history."""
    import json

    from models import registry
    from models.gate import describe_versions
    from repradar.settings import get_settings

    settings = get_settings()
    versions = describe_versions(settings)
    if registry.store_exists(settings):
        # runs left RUNNING by a SIGKILLed `train` on this host are ended; others are only named
        for note in registry.end_stale_runs(registry.configure(settings), settings):
            typer.echo(f"note: {note}", err=True)
    if as_json:
        typer.echo(json.dumps(versions, indent=1))
        return
    if not versions:
        typer.echo(f"no versions of {settings.model_name!r} yet: run `repradar train --data DIR`")
        return

    def f(v):
        return "-" if v is None else f"{v:.4f}"

    typer.echo(f"{settings.model_name} ({settings.tracking_uri})")
    typer.echo(
        f"{'version':>7}  {'created (UTC)':25}  {'aliases':22}  {'AUC':>6}  {'Brier':>6}  {'AUC@w3':>6}  "
        f"{'data':8}  {'seed':>5}  {'currency':8}  {'features':8}  {'data window':22}  --param"
    )
    for v in versions:
        # the data fingerprint's first 8 hex digits: equal figures are comparable only on equal data
        data = (v.get("data_sha256") or "-")[:8] if v.get("data_sha256") != "unknown" else "?"
        typer.echo(
            f"{v['version']:>7}  {v['created']:25}  {','.join(v['aliases']) or '-':22}  {f(v['test_auc']):>6}  "
            f"{f(v['test_brier']):>6}  {f(v['test_auc_week3']):>6}  {data:8}  {v.get('seed') or '-':>5}  "
            f"{v['currency'] or '?':8}  {v.get('features') or '?':8}  {v['data_window']:22}  "
            f"{_overrides(v.get('param_overrides'))}"
        )
        # the version's gate attempts and the times it was replaced, in the order they happened
        lines = []
        for h in v["history"]:
            figs = h.get("figures", {})
            ch, cp = figs.get("challenger", {}), figs.get("champion")
            vs = f" vs v{cp['version']} AUC {cp['auc']:.4f} Brier {cp['brier']:.4f}{_early(cp)}" if cp else ""
            why = f"; reason: {h['reason']}" if h.get("reason") else ""
            why += "".join(f"; alias {a} removed" for a in h.get("removed_aliases") or [])
            lines.append(
                (
                    h.get("at") or "",
                    f"{h['at']} {h['decision']} by {h['by']} via {h['via']}: "
                    f"AUC {ch.get('auc', float('nan')):.4f} Brier {ch.get('brier', float('nan')):.4f}"
                    f"{_early(ch)}{vs}{why}",
                )
            )
        replaced = v.get("replaced") or (
            [{"at": v["replaced_at"], "by_version": v["replaced_by"]}] if v.get("replaced_at") else []
        )
        for r in replaced:
            lines.append((r["at"] or "", f"{r['at']} replaced as champion by v{r['by_version']}"))
        for _, line in sorted(lines, key=lambda x: x[0]):
            typer.echo(f"{'':9}{line}")
    older = [v["version"] for v in versions if v.get("features") == "older" and "champion" in v["aliases"]]
    if older:
        typer.echo(
            f"note: champion v{older[0]} was trained on older feature definitions than this release computes "
            "(features: older); retrain and promote a version trained on the current ones"
        )


@app.command("relocate-home")
@_user_errors
def relocate_home(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be rewritten.")] = False,
) -> None:
    """Make a copied or moved REPRADAR_HOME use its own model files: rewrite the old home's paths that the
    embedded MLflow store records to this home's (after a backup of mlflow.db)."""
    from models import registry
    from repradar.settings import get_settings

    settings = get_settings()
    done = registry.relocate_home(settings, dry_run=dry_run)
    if done.old is None:
        typer.echo(
            f"REPRADAR_HOME {done.new} was not moved: its MLflow store records its own files; nothing to change"
        )
        return
    old, new = done.old / "mlartifacts", done.new / "mlartifacts"
    counts = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in done.changed.items())
    if dry_run:
        typer.echo(f"would rewrite {old} to {new} in {counts}; nothing was changed (--dry-run)")
        return
    typer.echo(f"backed up the MLflow store to {done.backup}")
    typer.echo(f"rewrote {old} to {new} in {counts}")
    typer.echo(
        f"{done.old} is no longer read: models load from, and training writes to, {done.new}; "
        "the backup may be deleted once `repradar models` and `repradar score` work here"
    )


@app.command()
@_user_errors
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: setting api_host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (default: setting api_port).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Server processes (SO_REUSEPORT).")
    ] = None,
) -> None:
    """Start the HTTP service (API under /api/v1); SIGTERM lets in-flight requests finish."""
    from repradar.settings import get_settings
    from serving.server import run

    raise typer.Exit(run(get_settings(), host, port, workers))


users_app = typer.Typer(
    help="Service users and their bearer tokens (only hashes are stored).", no_args_is_help=True
)
app.add_typer(users_app, name="users")


@users_app.command("add")
@_user_errors
def users_add(
    name: Annotated[str, typer.Argument(help="A unique user name.")],
    role: Annotated[
        list[str], typer.Option("--role", help="manager, hr, data_scientist or admin; repeat for several.")
    ],
    manager_id: Annotated[
        str | None,
        typer.Option("--manager-id", help="For managers: the id their reps carry in reps.manager_id."),
    ] = None,
) -> None:
    """Create a user and print their token (shown once)."""
    from repradar.settings import get_settings
    from serving.admin import unknown_manager_note
    from serving.admin import users_add as add

    settings = get_settings()
    info, token = add(settings, name, role, manager_id)
    typer.echo(f"user {info.name} ({', '.join(info.roles)}) created; token (shown once, keep it secret):")
    typer.echo(token)
    note = unknown_manager_note(settings, manager_id)
    if note:
        typer.echo(note, err=True)


@users_app.command("list")
@_user_errors
def users_list() -> None:
    """List users, their roles and their live tokens (by prefix, as revoke-token names them), each with
    the day it stops working (REPRADAR_TOKEN_MAX_DAYS)."""
    import datetime as dt

    from repradar.settings import get_settings
    from serving.admin import users_list as list_
    from serving.auth import token_lifetime

    settings = get_settings()
    lifetime, now = token_lifetime(settings), dt.datetime.now(dt.UTC)
    for u in list_(settings):
        tokens = u.token_states(lifetime, now)
        state = (
            "revoked"
            if u.disabled
            else f"{u.active_tokens} token(s)" + (f" ({', '.join(tokens)})" if tokens else "")
        )
        manager = f" manager_id={u.manager_id}" if u.manager_id else ""
        typer.echo(f"{u.name:20} {','.join(u.roles):28} {state}{manager}")


@users_app.command("revoke")
@_user_errors
def users_revoke(name: Annotated[str, typer.Argument(help="The user to disable.")]) -> None:
    """Disable a user and revoke all their tokens (effective on their next request)."""
    from repradar.settings import get_settings
    from serving.admin import users_revoke as revoke

    revoke(get_settings(), name)
    typer.echo(f"user {name} revoked")


@users_app.command("token")
@_user_errors
def users_token(name: Annotated[str, typer.Argument(help="The user to issue a further token for.")]) -> None:
    """Issue a further token for a user (to rotate: issue, switch, then revoke and re-add if needed)."""
    from repradar.settings import get_settings
    from serving.admin import users_token as issue

    typer.echo(issue(get_settings(), name))


@users_app.command("revoke-token")
@_user_errors
def users_revoke_token(
    name: Annotated[str, typer.Argument(help="The user holding the token.")],
    prefix: Annotated[
        str,
        typer.Argument(help="The token's first 10 characters (rr_ and 7 more), as `users token` printed it."),
    ],
) -> None:
    """Revoke one token (and end the dashboard sessions signed in with it); the user and other tokens stay."""
    from repradar.settings import get_settings
    from serving.admin import users_revoke_token as revoke

    info, revoked = revoke(get_settings(), name, prefix)
    typer.echo(f"token {revoked}… of {name} revoked; {info.active_tokens} live token(s) left")


def _erased_lines(out, verb: str) -> list[str]:
    refusals = f", {out.refusals} record(s) of refused tokens and sign-ins" if out.refusals else ""
    outcomes = f", {out.outcomes} period outcome(s)" if out.outcomes else ""
    return [
        f"{verb} {out.scores} stored score(s) ({out.current} of them the rep's current one), "
        f"{out.interventions} intervention entr{'y' if out.interventions == 1 else 'ies'}, "
        f"{out.directory} directory row(s), {len(out.job_files)} batch file(s){outcomes}{refusals}"
    ]


@app.command()
@_user_errors
def purge(
    before: Annotated[
        dt.datetime,
        typer.Option(
            "--before",
            formats=["%Y-%m-%d"],
            help="Delete scores of as-of days before this day, their batch files, intervention entries "
            "that ended before it, outcomes of quota periods that ended before it, and records of "
            "refused tokens and sign-ins made before it.",
        ),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be deleted.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Retention: delete what the service stores about reps before a day (the audit trail is kept)."""
    from repradar.settings import get_settings
    from serving.admin import purge as run

    settings = get_settings()
    day = before.date()
    if day > dt.date.today():
        raise UserError(f"--before {day} is in the future: that would delete every score; give a past day")
    if not dry_run:
        preview = run(settings, day, dry_run=True)
        if preview.total == 0:
            typer.echo(f"nothing is stored before {day}")
            return
        if not yes:
            typer.confirm(_erased_lines(preview, f"Delete, before {day},")[0] + "?", abort=True)
    out = run(settings, day, dry_run=dry_run)
    for line in _erased_lines(out, "would delete" if dry_run else "deleted"):
        typer.echo(line)


@app.command()
@_user_errors
def forget(
    rep_id: Annotated[str, typer.Argument(help="The rep whose stored data to erase.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be deleted.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erasure: delete everything the service stores about one rep (scores, interventions, period
    outcomes, directory, their rows in batch files); the audit trail keeps the rep id and records the erasure."""
    from repradar.settings import get_settings
    from serving.admin import forget as run
    from serving.retention import reps_in, training_runs_holding

    settings = get_settings()
    if not dry_run and not yes:
        preview = run(settings, rep_id, dry_run=True)
        typer.confirm(_erased_lines(preview, f"Delete, for rep {rep_id},")[0] + "?", abort=True)
    out = run(settings, rep_id, dry_run=dry_run)
    for line in _erased_lines(out, "would delete" if dry_run else "deleted"):
        typer.echo(line)
    if reps_in(settings.data_dir, rep_id):
        typer.echo(
            f"note: rep {rep_id} is still in the reps table of {settings.data_dir}; the next batch job scores "
            "them again unless they are removed from that export",
            err=True,
        )
    runs = training_runs_holding(settings, rep_id)
    if runs:
        typer.echo(
            f"note: rep {rep_id} is still in the held-out feature set of {len(runs)} MLflow training run(s) "
            f"({', '.join(runs[:5])}{' ...' if len(runs) > 5 else ''}): the rows the promotion gate compares "
            "versions on, kept as trained; delete those runs (`mlflow runs delete`, then `mlflow gc`) once no version needs them",
            err=True,
        )


db_app = typer.Typer(help="The service's database: its schema revision and upgrades.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("status")
@_user_errors
def db_status() -> None:
    """Say the database's schema revision and the one this version needs."""
    from repradar.settings import get_settings
    from serving.admin import db_status as status
    from serving.db.migrate import is_newer

    current, head = status(get_settings())
    state = "current" if current == head else "needs `repradar db upgrade`"
    if is_newer(current):  # `db upgrade` cannot help: a newer RepRadar migrated it
        state = "newer than this version: run the RepRadar that upgraded it, or restore a backup"
    typer.echo(f"database revision {current or 'none (empty)'}; this version needs {head}: {state}")


@db_app.command("upgrade")
@_user_errors
def db_upgrade() -> None:
    """Upgrade the database's schema to this version (what the service does at start unless
    REPRADAR_DB_AUTO_MIGRATE=false). Back the database up first."""
    from repradar.settings import get_settings
    from serving.admin import db_upgrade as upgrade

    before, head = upgrade(get_settings())
    if before == head:
        typer.echo(f"database already at revision {head}")
    else:
        typer.echo(f"database upgraded from revision {before or 'none (empty)'} to {head}")


@app.command()
@_user_errors
def demo(
    reps: Annotated[int, typer.Option(min=20, help="Reps in the demo organisation.")] = 500,
    periods: Annotated[int, typer.Option(min=4, help="Quarterly periods simulated.")] = 8,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
    serve_: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the dashboard at the end.")
    ] = True,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (default: setting api_port).")
    ] = None,
) -> None:
    """Simulate, validate, train, promote, score and serve, in one go, on embedded defaults."""
    from features.io import load_folder
    from repradar.demo import demo_signins, run_demo
    from repradar.settings import get_settings

    settings = get_settings()
    from repradar.progress import shown

    with shown(waiting=STARTING):  # the stages of training and scoring, not the server's life after
        result = run_demo(settings, reps=reps, periods=periods, seed=seed, echo=typer.echo)
    typer.echo(f"scores: {result.scores_path} (model version {result.model_version})")
    signins = demo_signins(settings, load_folder(result.data_dir, validate=False).reps)
    if settings.data_dir is None:
        settings = settings.model_copy(update={"data_dir": result.data_dir})
    host = settings.api_host
    port = port or settings.api_port
    typer.echo(f"dashboard: http://{host}:{port}/   API: http://{host}:{port}/api/v1  (docs at /docs)")
    typer.echo("sign in with one of these tokens:")
    for role, name, token in signins:
        typer.echo(f"  {role:15} {name:28} {token}")
    if serve_:
        from serving.server import run

        raise typer.Exit(run(settings, host, port, None))


def _read_scores_file(path: Path, flag: str):
    from models.scoring import read_scores

    if not path.exists():
        raise UserError(f"{flag} {path}: no such file; write one with `repradar score`")
    try:
        return read_scores(path)
    except (KeyError, ValueError, OSError) as exc:
        raise UserError(f"{flag} {path} is not a scores file written by `repradar score` ({exc})") from None


def _read_earlier(paths: list[Path], scores):
    """The --earlier files as one frame (None without any), each checked before the slow work: a scores
    file, scored before the report's as-of day; one score per rep and as-of day across them."""
    import pandas as pd

    from reporting.track_record import check_earlier

    if not paths:
        return None
    as_of = pd.to_datetime(scores["as_of"]).max()
    frames = []
    for path in paths:
        f = _read_scores_file(path, "--earlier")
        check_earlier(f, str(path), as_of)
        frames.append(f.assign(_file=str(path)))
    both = pd.concat(frames, ignore_index=True)
    day = pd.to_datetime(both["as_of"]).dt.date
    twice = both[both.assign(_day=day).duplicated(["rep_id", "_day"], keep=False)]
    if len(twice):
        r = twice.iloc[0]
        files = sorted(set(twice.loc[twice["rep_id"] == r["rep_id"], "_file"]))
        raise UserError(
            f"--earlier: rep {r['rep_id']} is scored as of {pd.Timestamp(r['as_of']).date()} more than once "
            f"({len(twice)} rows; files {', '.join(files)}): pass each list once"
        )
    return both.drop(columns=["_file"])


@app.command()
@_user_errors
@_progress
def report(
    scores: Annotated[
        Path, typer.Option("--scores", help="Scores file from `repradar score` (.parquet or .csv).")
    ],
    data: DataDir,
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Report to write (.html); the PDF and a JSON of the figures go beside it."
        ),
    ],
    interventions: Annotated[
        Path | None,
        typer.Option("--interventions", help="Intervention log (CSV/Parquet) instead of the folder's table."),
    ] = None,
    pdf: Annotated[
        bool, typer.Option("--pdf/--no-pdf", help="Also print the report to PDF with Chromium.")
    ] = True,
    lang: LangOpt = "en",
    earlier: Annotated[
        list[Path] | None,
        typer.Option(
            "--earlier",
            metavar="<path>",
            help="Scores file given out earlier (repeatable): set against what happened once its period finished.",
        ),
    ] = None,
) -> None:
    """HR's quarterly report: summary, bands, suggestions, fairness audit, drift, intervention effects,
    how earlier scores turned out, model card."""
    from features.io import load_folder
    from reporting.inputs import check_model_versions, check_one_score_per_rep, read_intervention_log
    from reporting.report import make_report
    from repradar.settings import get_settings

    # every check of the inputs runs before the slow part (features, snapshots, the model)
    lang = _lang(lang)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {out}: name the report file .html (the PDF is written beside it)")
    _check_writable(out)
    frame = _read_scores_file(scores, "--scores")
    check_model_versions(frame)
    check_one_score_per_rep(frame)
    # the log's own rules and its rep ids against the folder's reps table, in one pass: one refusal names all
    log = read_intervention_log(interventions, data_dir=data) if interventions else None
    for w in log.warnings if log else []:
        typer.echo(f"warning: {w}", err=True)
    before = _read_earlier(earlier or [], frame)
    res = make_report(
        frame,
        load_folder(data),
        get_settings(),
        out=out,
        interventions=log,
        pdf=pdf,
        lang=lang,
        earlier=before,
    )
    d = res.data
    typer.echo(f"wrote {res.html}")
    if res.pdf:
        typer.echo(f"wrote {res.pdf}")
    elif pdf:
        typer.echo(res.pdf_error, err=True)
    typer.echo(f"wrote {res.json}")
    if d.unverified:
        typer.echo(f"note: {d.unverified}", err=True)
    if d.fitted_period:  # as `repradar score` said it of these scores
        typer.echo(f"note: {d.fitted_period}", err=True)
    if d.feature_definitions:
        typer.echo(f"note: {d.feature_definitions}", err=True)
    s = d.summary
    typer.echo(
        f"{s['reps']} reps: {s['high']} high, {s['medium']} medium, {s['low']} low (model version {d.model.version})"
    )
    if worse := d.model.worse_than_pacing():
        typer.echo(f"model: {worse}")
    for line in d.fairness.summary_lines():
        typer.echo(f"fairness: {line}")
    if d.drift is not None:
        typer.echo(f"drift: {d.drift.summary_line()}")
    for line in d.track.summary_lines() if d.track is not None else []:
        typer.echo(f"earlier scores: {line}")


@app.command()
@_user_errors
def alerts(
    scores: Annotated[Path, typer.Option("--scores", help="This batch's scores file.")],
    previous: Annotated[
        Path | None,
        typer.Option(
            "--previous", help="The previous batch's scores file (default: the last one alerted on)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write the digests to --out instead of sending them.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for --dry-run digests.", file_okay=False)
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Data folder, for rep names in the digests.", file_okay=False),
    ] = None,
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            help="Language of the digests: en (English) or zh-CN (Simplified Chinese). "
            "Default: REPRADAR_ALERTS_LANG, else en.",
        ),
    ] = None,
) -> None:
    """Send each manager a digest of their reps newly in the high band (webhook and/or e-mail)."""
    from reporting.alerts import check_batch, check_previous, remember, remembered, send_alerts, state_path
    from reporting.settings import AlertSettings
    from repradar.settings import get_settings

    lang = _lang(lang) if lang is not None else None  # None: the settings' language
    if dry_run and out is None:
        raise UserError("--dry-run needs --out DIR for the digest files")
    settings = get_settings()
    now = _read_scores_file(scores, "--scores")
    check_batch(now, source=f"--scores {scores}")  # one model version, each rep once: nothing sent otherwise
    if previous:
        prev = _read_scores_file(previous, "--previous")
        note = check_previous(now, prev, source=f"--previous {previous}")
    else:
        prev = remembered(settings)
        note = check_previous(
            now,
            prev,
            source=f"the remembered batch {state_path(settings)}",
            hint="Pass the previous batch with --previous FILE, or delete that file to start afresh "
            "(every high-band rep then counts as new).",
        )
    if note:
        typer.echo(note, err=True)
    if prev is None:
        typer.echo("note: no previous batch: every rep in the high band counts as new", err=True)
    names, unnamed = None, None
    if data is not None:
        from features.io import load_folder
        from reporting.alerts import rep_names, reps_file_columns
        from reporting.inputs import check_scores_reps_in_data

        reps = load_folder(data).reps
        # the wrong folder would send every digest without names, without a word: refused as `report` does
        check_scores_reps_in_data(now, reps, why="their digests would go out without their names")
        names, unnamed = rep_names(reps, now, columns=reps_file_columns(data))
        if unnamed:
            typer.echo(f"note: {unnamed}", err=True)
    result = send_alerts(
        now,
        previous=prev,
        alert_settings=AlertSettings(),
        dry_run_dir=out if dry_run else None,
        names=names,
        names_note=unnamed,  # kept in each digest's JSON (`notes`), as `report` keeps its notes in its JSON
        lang=lang,
    )
    for line in result.lines():
        typer.echo(line)
    if result.errors:
        raise typer.Exit(1)
    if not dry_run:
        remember(now, settings)


def quiet_known_warnings() -> None:
    """Keep stderr for RepRadar's own messages: an import of pyspark.pandas warns about pandas 3.
    `features.pandera_pandas` keeps pandera from running it, on either engine; this stays for any
    other path to it. RepRadar never uses pyspark.pandas; only that warning is silenced."""
    import warnings

    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )


def main() -> None:  # pragma: no cover - entry point
    quiet_known_warnings()
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:  # anything that is not a user error: exit 1
        # the class and the message: PySpark's exceptions keep their message out of repr()
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc


if __name__ == "__main__":  # pragma: no cover
    main()
