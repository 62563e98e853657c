"""Sweeps: run a notebook or a training config once per grid point and seed, and collect one tidy table.

``python -m glsim_core sweep TARGET --grid key=v1,v2 [--grid ...] --seeds 1,10,100 [--out DIR] [--set key=value]``

* **TARGET** is a parameterised notebook (``.ipynb``: every run is executed with papermill into
  ``OUT/<point>/seed_<s>/notebook.ipynb`` with the point's parameters, ``SEED`` and ``OUT_DIR`` injected; its
  metrics are what the notebook ``record``-ed into ``OUT_DIR/results.json``) or a training config (``train``: the
  profile's :class:`~glsim_core.train.TrainConfig`; or a JSON/YAML file of TrainConfig fields: every run is one
  :func:`glsim_core.train.fit` with the fields overridden, ``out_dir`` = the run's folder).
* **Keys** are notebook parameters or TrainConfig fields; ``model_kwargs.top_o`` sets one entry of a dict field.
  Unknown keys are an error before anything runs. **Values** are parsed: ``1`` int, ``0.5`` float, ``true`` bool,
  ``none`` None, JSON lists/objects, anything else a string.
* Every finished run leaves ``run.json`` (parameters, seed, metrics, wall time, device, status) in its folder; a
  run whose ``run.json`` says ``ok`` (for the same full configuration) is not run again, so an interrupted sweep
  resumes. A failing run is recorded as ``failed`` with its error and the sweep goes on; the failures are listed
  at the end (and the CLI exits 1). Failed runs are retried by the next invocation.
* :func:`collect` gathers every ``run.json`` under ``OUT`` into one table (``OUT/results.csv``, and
  ``OUT/results.parquet`` when pyarrow is importable): parameter columns + ``seed`` + metric columns +
  ``wall_s``, ``device``, ``status``, ``error``, ``run_dir``, ``target``.

Runs of a training config go in-process by default (fast; an exception fails only that run); ``isolate=True``
(``--isolate``) runs each in its own Python process, so even a crash of the interpreter (out of memory, a
segfault in a kernel) fails only that run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import train
from ..notebook import _jsonable, load_results
from ..paths import build_dir
from ..runtime import get_device
from ..series import execute_with_parameters, parameters_of
from ..train import TrainConfig

__all__ = ["run_sweep", "collect", "parse_value", "parse_grid", "parse_assignments", "expand_grid", "resolve_target",
           "SweepTarget", "RUN_FILE", "RESULTS_CSV", "point_slug", "config_hash"]

RUN_FILE = "run.json"
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
#: columns every run has, in this order, after the parameters
META_COLUMNS = ("seed", "status", "wall_s", "device", "error", "run_dir", "target")
#: notebook parameters the runner sets itself
_RUNNER_NOTEBOOK_PARAMS = ("OUT_DIR", "SEED")
#: TrainConfig fields the runner sets itself
_RUNNER_TRAIN_FIELDS = ("out_dir", "seed", "resume")


# --------------------------------------------------------------------------------------------------- parsing
def parse_value(text: str) -> Any:
    """``"8"`` -> 8, ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"none"`` -> None, ``"[1, 2]"`` -> [1, 2], else the str."""
    if not isinstance(text, str):
        return text
    s = text.strip()
    low = s.lower()
    if low in ("none", "null"):
        return None
    if low == "true":
        return True
    if low == "false":
        return False
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        pass
    if s[:1] in "[{":
        try:
            return json.loads(s)
        except json.JSONDecodeError:
            pass
    return s


def _split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside brackets/braces/quotes (so ``[1,2],[3]`` is two values)."""
    parts, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def _key_value(item: str, what: str) -> tuple[str, str]:
    if "=" not in item:
        raise ValueError(f"bad {what} {item!r}: expected key=value")
    key, value = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ValueError(f"bad {what} {item!r}: empty key")
    return key, value


def parse_grid(items: Iterable[str]) -> dict[str, list[Any]]:
    """``["top_o=4,8", "metric=l1,l2"]`` -> ``{"top_o": [4, 8], "metric": ["l1", "l2"]}`` (values parsed)."""
    grid: dict[str, list[Any]] = {}
    for item in items or ():
        key, values = _key_value(item, "--grid")
        if key in grid:
            raise ValueError(f"--grid {key} is given twice; put all its values in one --grid {key}=v1,v2")
        parsed = [parse_value(v) for v in _split_top_level(values)]
        if not parsed or (len(parsed) == 1 and parsed[0] == ""):
            raise ValueError(f"--grid {key} has no values")
        grid[key] = parsed
    return grid


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    """``["epochs=1", "model_kwargs.top_o=8"]`` -> ``{"epochs": 1, "model_kwargs.top_o": 8}``."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, value = _key_value(item, "--set")
        out[key] = parse_value(value)
    return out


def parse_seeds(text: str | Sequence[int] | None) -> tuple[int, ...]:
    if text is None:
        return (1,)
    if isinstance(text, str):
        try:
            seeds = tuple(int(s) for s in text.split(",") if s.strip())
        except ValueError:
            raise ValueError(f"--seeds must be comma-separated integers, got {text!r}") from None
    else:
        seeds = tuple(int(s) for s in text)
    if not seeds:
        raise ValueError("no seeds given")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat: {list(seeds)}")
    return seeds


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of a grid, in order (the last key varies fastest); ``{}`` -> ``[{}]``."""
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ValueError(f"grid[{key!r}] must be a list of values, got {values!r}")
        if len(values) == 0:
            raise ValueError(f"grid[{key!r}] is empty")
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def config_hash(values: Mapping[str, Any]) -> str:
    """8 hex digits identifying a full configuration (sorted JSON)."""
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def point_slug(params: Mapping[str, Any], full: Mapping[str, Any] | None = None) -> str:
    """A folder name for a grid point: ``key-value_key-value__<hash of the full configuration>``."""
    readable = "_".join(f"{k.split('.')[-1]}-{_fmt(v)}" for k, v in params.items()) or "base"
    readable = re.sub(r"[^A-Za-z0-9.=_-]+", "-", readable).strip("-")[:80]
    return f"{readable}__{config_hash(full if full is not None else params)}"


def _set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    head, _, rest = key.partition(".")
    if not rest:
        target[head] = value
        return
    sub = target.get(head)
    sub = dict(sub) if isinstance(sub, dict) else {}
    _set_dotted(sub, rest, value)
    target[head] = sub


def apply_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied; dotted keys (``model_kwargs.top_o``) set entries of dict fields."""
    out = json.loads(json.dumps(dict(base), default=str))  # deep copy of plain values
    for key, value in overrides.items():
        _set_dotted(out, key, value)
    return out


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in values.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, name + "."))
        elif isinstance(v, (list, tuple)):
            out[name] = json.dumps(list(v))
        elif isinstance(v, dict):
            continue
        else:
            out[name] = v
    return out


def _scalar_metrics(values: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar (number/bool/str) entries of a results dict; nested dicts flattened with dots."""
    out = {}
    for k, v in _flatten({k: v for k, v in values.items() if not str(k).startswith("_")}).items():
        if isinstance(v, (int, float, bool, str)) or v is None:
            if isinstance(v, str) and v.startswith("["):
                continue  # lists (per-class accuracies, histories) stay in the run folder
            out[k] = v
    return out


# --------------------------------------------------------------------------------------------------- targets
@dataclass
class SweepTarget:
    """What a sweep runs: ``kind`` "notebook" (``path``) or "train" (``base``: the TrainConfig fields)."""

    kind: str
    name: str
    path: Path | None = None
    base: dict[str, Any] = field(default_factory=dict)
    notebook_params: dict[str, Any] = field(default_factory=dict)

    # ---- keys
    def valid_keys(self) -> list[str]:
        if self.kind == "notebook":
            return sorted(k for k in self.notebook_params if k not in _RUNNER_NOTEBOOK_PARAMS)

        return sorted(k for k in TrainConfig.field_names() if k not in _RUNNER_TRAIN_FIELDS)

    def validate_keys(self, keys: Iterable[str], what: str = "grid") -> None:
        valid = self.valid_keys()
        dict_fields = {"model_kwargs"} if self.kind == "train" else set()
        for key in keys:
            head = key.split(".", 1)[0]
            if key in _RUNNER_NOTEBOOK_PARAMS and self.kind == "notebook" or \
                    head in _RUNNER_TRAIN_FIELDS and self.kind == "train":
                raise ValueError(f"{what} key {key!r} is set by the sweep runner itself (per run); remove it")
            if head not in valid:
                kind = "notebook parameter" if self.kind == "notebook" else "TrainConfig field"
                raise ValueError(f"unknown {kind} {key!r} in {what}; valid names: {', '.join(valid)}")
            if "." in key and head not in dict_fields:
                raise ValueError(f"{what} key {key!r}: only dict fields ({sorted(dict_fields) or 'none'}) take "
                                 f"dotted sub-keys")

    # ---- runs
    def full_config(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Everything that defines a run except the seed and output folder (what the done-check compares)."""
        if self.kind == "notebook":
            return {"notebook": str(self.path), **{k: overrides[k] for k in sorted(overrides)}}

        values = apply_overrides(self.base, overrides)
        cfg = TrainConfig.from_dict({k: v for k, v in values.items() if k not in _RUNNER_TRAIN_FIELDS})
        d = json.loads(cfg.to_json())
        for k in (*_RUNNER_TRAIN_FIELDS, "progress", "name"):
            d.pop(k, None)
        return d

    def run(self, overrides: Mapping[str, Any], seed: int, run_dir: Path, isolate: bool = False,
            timeout: int | None = None, keep_checkpoints: bool = True) -> dict[str, Any]:
        """Execute one run; return ``{"metrics": {...}, "device": str}`` (raises on failure)."""
        if self.kind == "notebook":
            return self._run_notebook(overrides, seed, run_dir, timeout)
        result = self._run_train(overrides, seed, run_dir, isolate, timeout)
        if not keep_checkpoints:
            (run_dir / "checkpoint.pt").unlink(missing_ok=True)
        return result

    def _run_notebook(self, overrides, seed, run_dir, timeout) -> dict[str, Any]:
        params = dict(overrides)
        if "SEED" in self.notebook_params:
            params["SEED"] = int(seed)
        params["OUT_DIR"] = str(run_dir.resolve())
        execute_with_parameters(self.path, run_dir / "notebook.ipynb", params, cwd=str(self.path.parent),
                                kernel_name="python3", progress_bar=False, execution_timeout=timeout)
        results = load_results(run_dir)
        device = results.get("device")
        if device is None:
            device = str(get_device())
        return {"metrics": _scalar_metrics(results), "device": str(device)}

    def _config(self, overrides, seed, run_dir):
        values = apply_overrides(self.base, overrides)
        resume = (run_dir / "checkpoint.pt").is_file()  # an interrupted run continues where it stopped
        values.update(seed=int(seed), out_dir=str(run_dir), resume=resume)
        if "progress" not in overrides:
            values["progress"] = False  # the sweep's own bar is the progress display
        return TrainConfig.from_dict(values)

    def _run_train(self, overrides, seed, run_dir, isolate, timeout) -> dict[str, Any]:
        config = self._config(overrides, seed, run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        if isolate:
            cfg_path = run_dir / "sweep_config.json"
            cfg_path.write_text(config.to_json())
            proc = subprocess.run([sys.executable, "-m", "glsim_core.experiments.sweep", str(cfg_path)],
                                  capture_output=True, text=True, timeout=timeout)
            (run_dir / "stdout.txt").write_text(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()
                raise RuntimeError(f"subprocess exited {proc.returncode}: {tail[-1] if tail else ''}")
            metrics = json.loads((run_dir / "metrics.json").read_text())
        else:
            metrics = train.fit(config).metrics  # looked up per run (tests replace it)
        return {"metrics": _train_metrics(metrics), "device": str(metrics.get("device", ""))}


def _train_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("top1", "eval_loss", "eval_split", "n_eval", "train_size", "eval_size", "seconds", "train_img_per_s",
            "num_classes")
    out = {k: metrics[k] for k in keep if k in metrics}
    hist = metrics.get("history") or []
    if hist:
        out["train_loss"] = hist[-1].get("train_loss")
        out["train_top1"] = hist[-1].get("train_top1")
        out["epochs_run"] = len(hist)
    return out


def resolve_target(target: str | os.PathLike, profile: str | None = None) -> SweepTarget:
    """``"train"``, a ``.json``/``.yaml`` TrainConfig file, or a ``.ipynb`` notebook -> :class:`SweepTarget`."""

    text = str(target)
    if text == "train":
        base = json.loads(TrainConfig.from_profile(profile).to_json())
        return SweepTarget("train", "train", base=base)
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix not in (".ipynb", ".json", ".yaml", ".yml"):
        raise ValueError(f"sweep target {text!r}: expected 'train', a TrainConfig .json/.yaml file or a notebook "
                         f".ipynb")
    if not path.is_file():
        raise FileNotFoundError(f"sweep target {text} does not exist")
    if suffix == ".ipynb":
        params = parameters_of(path)
        if not params:
            raise ValueError(f"{path} has no 'parameters'-tagged cell: papermill cannot inject a sweep's values")
        if "OUT_DIR" not in params:
            raise ValueError(f"{path}'s parameters cell has no OUT_DIR: the sweep could not collect its results")
        return SweepTarget("notebook", path.stem, path=path.resolve(), notebook_params=params)
    if suffix == ".json":
        values = json.loads(path.read_text())
    else:
        import yaml

        values = yaml.safe_load(path.read_text())
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of TrainConfig fields")
    base = json.loads(TrainConfig.from_profile(profile, **values).to_json())  # validates the file's fields
    return SweepTarget("train", path.stem, path=path.resolve(), base=base)


# --------------------------------------------------------------------------------------------------- the runner
def _read_run(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=True))
    tmp.replace(path)


def _find_done(out: Path, chash: str, seed: int) -> dict[str, Any] | None:
    """A finished ``ok`` run of the same full configuration and seed anywhere under ``out``."""
    for path in sorted(out.glob(f"*__{chash}/seed_{seed}/{RUN_FILE}")):
        rec = _read_run(path)
        if rec and rec.get("status") == "ok" and rec.get("config_hash") == chash:
            return rec
    return None


def run_sweep(target: str | os.PathLike | SweepTarget, grid: Mapping[str, Sequence[Any]] | None = None,
              seeds: Sequence[int] | str | None = (1, 10, 100), out: str | os.PathLike | None = None,
              fixed: Mapping[str, Any] | None = None, *, profile: str | None = None, isolate: bool = False,
              dry_run: bool = False, progress: bool = True, timeout: int | None = None,
              tags: Mapping[str, Any] | None = None, keep_checkpoints: bool = True):
    """Run ``target`` once per grid point and seed into ``out``; return the tidy table of this sweep's runs.

    ``grid``: ``{key: [values]}`` (cartesian product); ``fixed``: ``{key: value}`` applied to every run (dotted keys
    set dict entries: ``{"model_kwargs.top_o": 8}``); ``tags``: extra constant columns for the table (not passed to
    the target, e.g. ``{"ablation": "table13"}``). ``out`` defaults to ``build/runs/<target name>``.
    ``keep_checkpoints=False`` deletes each finished training run's ``checkpoint.pt`` (sweeps of many runs).
    Runs already done (``ok``, same full configuration and seed) are read back, not re-run. The returned
    DataFrame has ``attrs["failed"]`` (``[{"run_dir", "error"}]`` of the failed runs) and ``attrs["out"]``;
    ``dry_run=True`` only lists the runs
    (status ``planned``, or ``ok`` for runs already done). See the module docstring for the folder layout.
    """
    from tqdm.auto import tqdm

    tgt = target if isinstance(target, SweepTarget) else resolve_target(target, profile=profile)
    grid = dict(grid or {})
    fixed = dict(fixed or {})
    seeds = parse_seeds(seeds)
    overlap = sorted(set(grid) & set(fixed))
    if overlap:
        raise ValueError(f"{overlap} are both swept (grid) and fixed; keep each key in one of them")
    tgt.validate_keys(grid, "grid")
    tgt.validate_keys(fixed, "fixed settings")
    if tgt.kind == "notebook" and "SEED" not in tgt.notebook_params and len(seeds) > 1:
        raise ValueError(f"{tgt.path.name} has no SEED parameter: pass a single seed (its runs would be identical)")
    points = expand_grid(grid)
    out = Path(out) if out is not None else build_dir() / "runs" / tgt.name
    out = out.resolve()

    plan = []
    for point in points:
        overrides = {**fixed, **point}
        full = tgt.full_config(overrides)  # validates values (TrainConfig) before anything runs
        chash = config_hash(full)
        slug = point_slug(point, full)
        for seed in seeds:
            plan.append((point, overrides, chash, out / slug / f"seed_{seed}", int(seed)))

    records: list[dict[str, Any]] = []
    if not dry_run:
        out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(plan, desc=f"sweep {tgt.name}", unit="run", disable=not progress or dry_run)
    for point, overrides, chash, run_dir, seed in bar:
        done = _find_done(out, chash, seed)
        if done is not None:
            records.append(done)
            continue
        record = {"params": point, "fixed": fixed, "tags": dict(tags or {}), "seed": seed, "config_hash": chash,
                  "target": tgt.name,
                  "target_kind": tgt.kind, "run_dir": str(run_dir), "metrics": {}, "device": "", "error": "",
                  "wall_s": None}
        if dry_run:
            records.append({**record, "status": "planned"})
            continue
        bar.set_postfix_str(f"{run_dir.parent.name.split('__')[0]} seed {seed}")
        run_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        try:
            result = tgt.run(overrides, seed, run_dir, isolate=isolate, timeout=timeout,
                             keep_checkpoints=keep_checkpoints)
            record.update(status="ok", metrics=result["metrics"], device=result["device"])
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one run's failure never stops the sweep
            msg = str(exc).strip().splitlines()
            record.update(status="failed", error=f"{type(exc).__name__}: {msg[-1] if msg else ''}"[:500])
            (run_dir / "error.txt").write_text(traceback.format_exc())
        record["wall_s"] = time.perf_counter() - start
        record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        _write_json(run_dir / RUN_FILE, record)
        records.append(record)

    table = _table(records, tags)
    failed = [{"run_dir": r["run_dir"], "error": r["error"]} for r in records if r.get("status") == "failed"]
    table.attrs["failed"] = failed
    table.attrs["out"] = str(out)
    if not dry_run:
        collect(out)  # refresh OUT/results.csv with every run in the folder
        if failed and progress:
            print(f"{len(failed)} of {len(table)} runs failed:", file=sys.stderr)
            for r in failed:
                print(f"  {r['run_dir']}: {r['error']}", file=sys.stderr)
    return table


def _row(record: Mapping[str, Any], tags: Mapping[str, Any] | None = None) -> dict[str, Any]:
    row: dict[str, Any] = dict(tags if tags is not None else record.get("tags") or {})
    row.update(_flatten(record.get("fixed") or {}))
    row.update(_flatten(record.get("params") or {}))
    row.update({"seed": record.get("seed"), "status": record.get("status"), "wall_s": record.get("wall_s"),
                "device": record.get("device"), "error": record.get("error") or "",
                "run_dir": record.get("run_dir"), "target": record.get("target")})
    for k, v in (record.get("metrics") or {}).items():
        row[k if k not in row else f"metric.{k}"] = v
    return row


def _table(records: list[Mapping[str, Any]], tags: Mapping[str, Any] | None = None):
    """Records -> DataFrame: parameter columns, seed, metric columns, then the run's metadata."""
    import pandas as pd

    if not records:
        return pd.DataFrame(columns=list(META_COLUMNS))
    metric_keys: list[str] = []
    for rec in records:
        metric_keys += [k for k in (rec.get("metrics") or {}) if k not in metric_keys]
    table = pd.DataFrame([_row(r, tags) for r in records])
    meta = [c for c in META_COLUMNS if c in table.columns]
    metrics = [c for c in table.columns if (c in metric_keys or c.startswith("metric.")) and c not in meta]
    first = [c for c in table.columns if c not in meta and c not in metrics]
    return table[first + ["seed"] + metrics + [c for c in meta if c != "seed"]]


def collect(out: str | os.PathLike, write: bool = True):
    """Every run under ``out`` (each ``*/seed_*/run.json``) as one tidy DataFrame; writes ``out/results.csv``
    (and ``out/results.parquet`` when pyarrow is importable) unless ``write=False``."""

    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"no sweep folder {out}")
    records = [r for r in (_read_run(p) for p in sorted(out.glob(f"*/seed_*/{RUN_FILE}"))) if r]
    table = _table(records)
    if write:
        # written under a name of this process's own and renamed: two sweeps sharing ``out`` (one per core) never
        # leave a table interleaved from both
        _replace_from_tmp(out / RESULTS_CSV, lambda tmp: table.to_csv(tmp, index=False))
        try:
            import pyarrow  # noqa: F401

            _replace_from_tmp(out / RESULTS_PARQUET, lambda tmp: table.astype(
                {c: "string" for c in table.columns if table[c].dtype == object}).to_parquet(tmp, index=False))
        except ImportError:
            pass
    return table


def _replace_from_tmp(path: Path, write: Callable[[Path], Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------- the CLI


def _run_config_file(path: str) -> int:
    """Entry point of an isolated run: ``python -m glsim_core.experiments.sweep CONFIG.json``."""

    train.fit(TrainConfig.from_json(path))
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through subprocesses
    sys.exit(_run_config_file(sys.argv[1]))
