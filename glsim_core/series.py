"""The notebook series: discovery, the table of contents, conventions, and execution.

* :func:`discover` finds ``notebooks/NN_topic.ipynb`` and reads each one's title and one-line summary.
* :func:`index_table` renders the table of contents (with Open-in-Colab / Binder links) that ``00_index`` and the
  README share; :func:`update_index` writes it into both.
* :func:`colab_cell` is the first code cell every notebook starts with; :func:`stamp` writes it into them.
* :func:`run_series` executes the series headless with papermill into ``build/`` (``make run``);
  :func:`execute_inplace` re-executes notebooks in place in a fresh kernel (what gets committed).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import COLAB_REF, REPO_SLUG, binder_url, colab_url
from .exercises.catalog import TABLE_END, TABLE_START, readme_table
from .notebook import load_results
from .paths import build_dir, notebooks_dir, repo_root
from .runtime import env

__all__ = [
    "NotebookInfo", "discover", "time_estimate", "select_notebooks", "index_table", "update_index", "colab_cell",
    "stamp", "check_conventions",
    "run_series", "execute_inplace", "parameters_of", "check_parameters", "execute_with_parameters",
]

NAME_RE = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")
INDEX_START, INDEX_END = "<!-- notebooks:start -->", "<!-- notebooks:end -->"


@dataclass(frozen=True)
class NotebookInfo:
    path: Path
    number: str
    title: str
    summary: str
    time: str = ""  # the first markdown cell's "**Time:**" line, as the index shows it

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def stem(self) -> str:
        return self.path.stem


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _read(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _title_and_summary(nb: dict) -> tuple[str, str]:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        lines = [ln.strip() for ln in _source(cell).splitlines()]
        heading = next((ln for ln in lines if ln.startswith("# ")), None)
        if heading is None:
            continue
        rest = [ln for ln in lines[lines.index(heading) + 1:] if ln and not ln.startswith(("#", "[", "!", "<"))]
        summary = rest[0].strip("*_ ") if rest else ""
        return heading[2:].strip(), summary
    return "(untitled)", ""


TIME_RE = re.compile(r"\*\*Time:\*\*\s*(.+?)(?:\n\s*\n|$)", re.S)


def time_estimate(nb: dict) -> str:
    """The ``**Time:** ...`` line of a notebook's first markdown cell, without its parenthesised remarks (the
    index's Time column); empty if there is none."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            match = TIME_RE.search(_source(cell))
            if not match:
                return ""
            text = re.sub(r"\s*\([^)]*\)", "", " ".join(match.group(1).split()))
            return text.strip().rstrip(".")
    return ""


def discover(folder: str | Path | None = None) -> list[NotebookInfo]:
    """The numbered notebooks of the series (``NN_topic.ipynb``), in order."""
    folder = Path(folder) if folder else notebooks_dir()
    found = []
    for path in sorted(folder.glob("*.ipynb")):
        match = NAME_RE.match(path.name)
        if not match:
            continue
        nb = _read(path)
        title, summary = _title_and_summary(nb)
        found.append(NotebookInfo(path=path, number=match.group(1), title=title, summary=summary,
                                  time=time_estimate(nb)))
    return found


def select_notebooks(only: Iterable[str] | None = None, folder: str | Path | None = None) -> list[NotebookInfo]:
    """The notebooks a series run executes: every numbered notebook, or those ``only`` names by number (``"05"``),
    stem or file name — each notebook once, in series order, however many of its names ``only`` gives."""
    wanted = {str(o) for o in (only or ())}
    chosen, seen = [], set()
    for nb in discover(folder):
        key = nb.path.resolve()
        if key in seen or (wanted and not wanted & {nb.number, nb.stem, nb.name}):
            continue
        seen.add(key)
        chosen.append(nb)
    return chosen


def index_table(notebooks: Iterable[NotebookInfo] | None = None, link_prefix: str = "notebooks/") -> str:
    """The Markdown table of contents: one line per notebook with Colab and Binder links."""
    notebooks = discover() if notebooks is None else list(notebooks)
    lines = ["| # | Notebook | What it covers | Time | Open |", "|---|---|---|---|---|"]
    for nb in notebooks:
        links = (f"[![Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(nb.name)}) "
                 f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(nb.name)})")
        lines.append(f"| {nb.number} | [{nb.title}]({link_prefix}{nb.name}) | {nb.summary} | {nb.time or '—'} | "
                     f"{links} |")
    return "\n".join(lines)


def _replace_between(text: str, block: str) -> str:
    if INDEX_START not in text or INDEX_END not in text:
        raise ValueError(f"markers {INDEX_START} ... {INDEX_END} not found")
    head, rest = text.split(INDEX_START, 1)
    _, tail = rest.split(INDEX_END, 1)
    return f"{head}{INDEX_START}\n{block}\n{INDEX_END}{tail}"


def update_index(root: str | Path | None = None) -> list[Path]:
    """Write the table of contents into README.md and notebooks/00_index.ipynb, and refresh the README's exercise
    table (its badges use the same repository and ref); return the files changed."""

    root = Path(root) if root else repo_root()
    notebooks = discover(root / "notebooks")
    changed = []
    readme = root / "README.md"
    text = readme.read_text()
    new = _replace_between(text, index_table(notebooks, link_prefix="notebooks/"))
    if TABLE_START in new and TABLE_END in new:
        head, rest = new.split(TABLE_START, 1)
        new = f"{head}{TABLE_START}\n{readme_table()}\n{TABLE_END}{rest.split(TABLE_END, 1)[1]}"
    if new != text:
        readme.write_text(new)
        changed.append(readme)
    index = root / "notebooks" / "00_index.ipynb"
    if index.is_file():
        nb = _read(index)
        for cell in nb["cells"]:
            src = _source(cell)
            if cell["cell_type"] == "markdown" and INDEX_START in src:
                new_src = _replace_between(src, index_table(notebooks, link_prefix=""))
                if new_src != src:
                    cell["source"] = new_src.splitlines(keepends=True)
                    _write(index, nb)
                    changed.append(index)
                break
    return changed


#: Where the Colab cell clones the repository.
COLAB_DEST = "/content/glsim"


def colab_cell(ref: str = COLAB_REF, repo: str = REPO_SLUG) -> str:
    """The first code cell of every notebook: on Colab only, clone ``repo`` at ``ref`` and install it; a no-op
    anywhere else.

    Plain Python (no ``!``/``%`` magics), so it can be tested with a fake ``google.colab`` and a stubbed
    ``subprocess``. It works in one run, without restarting the runtime: the install is **not** editable (an
    editable install is only seen by a new Python process), it goes into a site directory Colab's Python already
    searches (any new one is added with ``site.addsitedir``) and ``importlib.invalidate_caches()`` makes it
    importable at once. pip installs only the runtime dependencies (``pyproject.toml``'s ``dependencies``: no
    Jupyter packages, those are the ``notebooks`` extra) and leaves those Colab already has alone (no
    ``--upgrade``), so Colab's kernel stack is not touched. ``GLSIM_ROOT`` points the package at the clone
    (``data/``, ``build/``) and the working directory becomes its ``notebooks/`` folder.
    """
    return (
        f"# Colab only: clone github.com/{repo} at `{ref}` and pip-install it (not editable: importable at once,\n"
        "# no restart); pip adds only the runtime dependencies Colab lacks and leaves its Jupyter stack alone.\n"
        "# Anywhere else (local, Binder, CI) this cell does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import importlib, os, site, subprocess\n"
        "\n"
        f'    REPO, REF, DEST = "https://github.com/{repo}.git", "{ref}", "{COLAB_DEST}"\n'
        "    if not os.path.isdir(os.path.join(DEST, \".git\")):\n"
        '        subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", REF, REPO, DEST], check=True)\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", DEST], check=True)\n'
        "    for folder in site.getsitepackages() + [site.getusersitepackages()]:\n"
        "        if os.path.isdir(folder) and folder not in sys.path:\n"
        "            site.addsitedir(folder)\n"
        "    importlib.invalidate_caches()\n"
        '    os.environ["GLSIM_ROOT"] = DEST\n'
        '    os.chdir(os.path.join(DEST, "notebooks"))\n'
        "    import glsim_core\n"
        "\n"
        '    print(f"glsim_core {glsim_core.__version__} installed from {REPO} at {REF}")'
    )


def _write(path: Path, nb: dict) -> None:
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def stamp(paths: Iterable[str | Path] | None = None, ref: str = COLAB_REF) -> list[Path]:
    """Rewrite the first code cell of each notebook to :func:`colab_cell` (keeps its outputs), set the standard
    ``python3`` kernelspec and drop editor metadata (jupytext's), so every notebook starts the same way."""
    changed = []
    targets = [Path(p) for p in paths] if paths else [nb.path for nb in discover()]
    for path in targets:
        nb = _read(path)
        before = json.dumps(nb, sort_keys=True)
        cell = next((c for c in nb["cells"] if c["cell_type"] == "code"), None)
        if cell is not None and _source(cell) != colab_cell(ref):
            cell["source"] = colab_cell(ref).splitlines(keepends=True)
        nb.setdefault("metadata", {})["kernelspec"] = dict(KERNELSPEC)
        nb["metadata"].pop("jupytext", None)
        nb["metadata"].setdefault("language_info", {"name": "python"})
        if json.dumps(nb, sort_keys=True) != before:
            _write(path, nb)
            changed.append(path)
    return changed


def check_conventions(path: str | Path) -> list[str]:
    """Problems with one notebook against the series' conventions (empty list: none)."""
    path = Path(path)
    nb = _read(path)
    problems = []
    if not NAME_RE.match(path.name):
        problems.append("name is not NN_topic.ipynb")
    cells = nb.get("cells", [])
    code = [c for c in cells if c["cell_type"] == "code" and _source(c).strip()]
    if not code or _source(code[0]) != colab_cell():
        problems.append("first code cell is not the Colab install cell (run `python -m glsim_core notebooks stamp`)")
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells):
        problems.append("no cell tagged 'parameters'")
    else:
        index = next(i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", []))
        if index > 3:
            problems.append(f"the parameters cell is code cell #{index + 1}; keep it near the top (<= 4)")
    counts = [c.get("execution_count") for c in code]
    if None in counts or counts != list(range(1, len(counts) + 1)):
        problems.append(f"not committed as one top-to-bottom run in a fresh kernel (execution counts {counts[:8]})")
    for i, c in enumerate(code):
        for out in c.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"code cell #{i + 1} has an error output committed")
    size = path.stat().st_size
    if size > 2_000_000:
        problems.append(f"{size / 1e6:.1f} MB: keep notebooks small enough to read on GitHub (< 2 MB)")
    return problems


def parameters_of(path: str | Path) -> dict[str, Any]:
    """The names and default values of a notebook's ``parameters`` cell (via papermill's inspector)."""
    import papermill as pm

    return {name: info["default"] for name, info in pm.inspect_notebook(str(path)).items()}


def check_parameters(path: str | Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """The notebook's parameters; a name ``parameters`` sets that its ``parameters`` cell lacks is a ``ValueError``
    naming the valid ones (papermill itself only warns and runs with the default)."""
    valid = parameters_of(path)
    unknown = sorted(set(parameters) - set(valid))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for notebook {Path(path).name}; its parameters are "
                         f"{sorted(valid)}")
    return valid


def execute_with_parameters(path: str | Path, output: str | Path, parameters: dict[str, Any], **kwargs: Any):
    """``papermill.execute_notebook`` after :func:`check_parameters` (a misspelled parameter is an error)."""
    import papermill as pm

    check_parameters(path, parameters)
    return pm.execute_notebook(str(path), str(output), parameters=parameters, **kwargs)


def _kernel_name() -> str:
    return "python3"


def execute_inplace(paths: Iterable[str | Path], timeout: int = 1800, smoke: bool = False) -> list[tuple[Path, float]]:
    """Execute notebooks top to bottom in a fresh kernel, in place (their folder as cwd); return timings.

    This is how committed notebooks get their outputs. Uses nbclient directly so no papermill metadata or
    injected cells end up in the committed file.
    """
    import os

    import nbclient
    import nbformat

    timings = []
    env_smoke, env_headless = env("GLSIM_SMOKE"), env("GLSIM_HEADLESS")
    os.environ["GLSIM_SMOKE"] = "1" if smoke else "0"
    os.environ["GLSIM_HEADLESS"] = "1"  # no widget frontend: explorers draw static figures
    try:
        for path in paths:
            path = Path(path).resolve()
            nb = nbformat.read(path, as_version=4)
            start = time.perf_counter()
            client = nbclient.NotebookClient(
                nb, timeout=timeout, kernel_name=_kernel_name(),
                resources={"metadata": {"path": str(path.parent)}},
            )
            client.execute()
            elapsed = time.perf_counter() - start
            nb.metadata.pop("papermill", None)
            nbformat.write(nb, path)
            timings.append((path, elapsed))
            print(f"executed {path.name} in {elapsed:.1f} s", flush=True)
    finally:
        for name, value in (("GLSIM_SMOKE", env_smoke), ("GLSIM_HEADLESS", env_headless)):
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return timings


def run_series(
    profile: str = "cpu",
    out: str | Path | None = None,
    smoke: bool = False,
    only: Iterable[str] | None = None,
    timeout: int = 1800,
    extra_parameters: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Execute every notebook headless with papermill into ``out`` (default ``build/``); never stops at a failure.

    Each notebook gets ``PROFILE``, ``SMOKE`` and ``OUT_DIR`` (``out/<stem>``) when its parameters cell defines
    them. Executed notebooks go to ``out/notebooks/``. Returns one row per notebook (status, seconds, output dir,
    what it recorded, how many figures) and writes ``out/summary.json`` and ``out/summary.md``.
    """
    import os

    import papermill as pm
    from tqdm.auto import tqdm

    os.environ.setdefault("GLSIM_HEADLESS", "1")  # kernels inherit it: explorers draw static figures
    out = Path(out) if out else build_dir()
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    selected = select_notebooks(only)
    if not selected:
        raise ValueError(f"no notebook matches {list(only or [])}; available: {[nb.stem for nb in discover()]}")
    known = {name for nb in selected for name in parameters_of(nb.path)}
    unknown = sorted(set(extra_parameters or {}) - known)
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}: no selected notebook has them; their parameters are "
                         f"{sorted(known)}")
    rows = []
    bar = tqdm(selected, desc="notebooks", unit="nb")
    for nb in bar:
        bar.set_postfix_str(nb.stem)
        run_dir = (out / nb.stem).resolve()
        defaults = parameters_of(nb.path)
        wanted = {"PROFILE": profile, "SMOKE": smoke, "OUT_DIR": str(run_dir), **(extra_parameters or {})}
        params = {k: v for k, v in wanted.items() if k in defaults}
        start = time.perf_counter()
        status, error = "ok", ""
        try:
            pm.execute_notebook(
                str(nb.path), str(out / "notebooks" / nb.name), parameters=params, cwd=str(nb.path.parent),
                kernel_name=_kernel_name(), progress_bar=False, execution_timeout=timeout,
            )
        except Exception as exc:  # keep going, report at the end
            last_line = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
            status, error = "FAILED", f"{type(exc).__name__}: {last_line}"
        seconds = time.perf_counter() - start

        results = load_results(run_dir)
        figures = len(list((run_dir / "figures").glob("*.png"))) if (run_dir / "figures").is_dir() else 0
        rows.append({"notebook": nb.name, "status": status, "seconds": round(seconds, 1), "out_dir": str(run_dir),
                     "figures": figures, "results": {k: v for k, v in results.items() if not k.startswith("_")},
                     "error": error})
    (out / "summary.json").write_text(json.dumps(rows, indent=2))
    (out / "summary.md").write_text(format_summary(rows, profile=profile, smoke=smoke, out=out))
    return rows


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return f"[{len(value)} values]"
    return str(value)


def format_summary(rows: list[dict[str, Any]], profile: str, smoke: bool, out: Path) -> str:
    """A short human summary of a series run (also printed by ``make run``): one line per notebook (a notebook
    that appears in ``rows`` more than once is listed once, with its last run)."""
    rows = list({r["notebook"]: r for r in rows}.values())
    total = sum(r["seconds"] for r in rows)
    ok = sum(r["status"] == "ok" for r in rows)
    lines = [f"# Notebook series: profile={profile}{' (smoke)' if smoke else ''}",
             f"{ok}/{len(rows)} notebooks ran in {total / 60:.1f} min; executed notebooks in {out / 'notebooks'}",
             "", "| notebook | status | time (s) | figures | recorded |", "|---|---|---|---|---|"]
    for r in rows:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in list(r["results"].items())[:4])
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r['error']}"
        lines.append(f"| {r['notebook']} | {status} | {r['seconds']:.1f} | {r['figures']} | {shown} |")
    return "\n".join(lines) + "\n"
