"""The exercises: which check, which notebook, which series notebook it sits beside, and the expected time."""

from __future__ import annotations

from dataclasses import dataclass

from .. import binder_url, colab_url

__all__ = ["Exercise", "EXERCISES", "NOTEBOOKS", "exercises_in", "PENDING", "readme_table", "notes_table",
           "TABLE_START", "TABLE_END"]

TABLE_START, TABLE_END = "<!-- exercises:start -->", "<!-- exercises:end -->"


@dataclass(frozen=True)
class Exercise:
    """One exercise: ``check_<name>`` grades it; it lives in ``notebooks/exercises/<notebook>.ipynb``."""

    name: str
    title: str
    notebook: str
    minutes: int
    kind: str  # "code" or "code + written"
    paper: str

    @property
    def check(self) -> str:
        return f"check_{self.name}"


#: Exercise notebook stem -> (the series notebook it accompanies, a short title).
NOTEBOOKS: dict[str, tuple[str, str]] = {
    "01_pooling_framework_exercises": ("01_pooling_framework",
                                       "The pooling framework: f_α, and three poolings as configurations"),
    "02_simpool_exercises": ("02_simpool", "SimPool: the forward pass, and what γ does"),
    "03_gls_exercises": ("03_global_local_similarity", "Global-local similarity: scores, the box, the release's rule"),
    "05_dfsm_cost_exercises": ("05_dfsm_cost", "The cost of selection: attention rollout and its FLOPs"),
    "08_localization_exercises": ("08_attention_maps_and_localization",
                                  "Localisation: MaxBoxAccV2 by hand, a centre prior against GLS"),
}

EXERCISES: tuple[Exercise, ...] = (
    Exercise("f_alpha", "Implement f_α (Eq. 8) as a weighted power mean, limits α = ±∞ included",
             "01_pooling_framework_exercises", 20, "code", "SimPool §3.1, Eq. 5 and 8"),
    Exercise("pooling_configs", "A p-norm, a norm-weighted average and mean shift as configurations of the framework",
             "01_pooling_framework_exercises", 25, "code", "SimPool §3.1, Eq. 1–8, Table 1"),
    Exercise("simpool_forward", "SimPool's forward pass from its parameters, Eq. 12–17",
             "02_simpool_exercises", 30, "code", "SimPool §3.3, Eq. 12–17"),
    Exercise("gamma_sharpness", "Predict, then measure: γ against the sharpness of SimPool's pooling",
             "02_simpool_exercises", 25, "code + written", "SimPool §3.3, Eq. 17"),
    Exercise("gls", "Global-local similarity at every layer, through the final norm, register tokens included",
             "03_gls_exercises", 20, "code", "GLSim §3.2, Eq. 1–2"),
    Exercise("enclosing_box", "The pixel box enclosing the top-O tokens",
             "03_gls_exercises", 20, "code", "GLSim §3.2, Figure 1"),
    Exercise("box_rule_ablation", "Predict, then measure: the paper's box against the authors' release",
             "03_gls_exercises", 25, "code + written", "GLSim §3.2 vs the authors' release"),
    Exercise("attention_rollout", "Attention rollout over a ViT's layers",
             "05_dfsm_cost_exercises", 20, "code", "GLSim §2.2, Table 1 (Abnar & Zuidema 2020)"),
    Exercise("dfsm_flops", "Count the FLOPs of PSM, rollout, MAWS, GLS and of rollout per head; predict, then "
             "measure: how they scale", "05_dfsm_cost_exercises", 40, "code + written", "GLSim Tables 1, 7, 8"),
    Exercise("estimated_boxes", "The boxes of a thresholded score map: min-max, τ, every 8-connected component",
             "08_localization_exercises", 20, "code", "SimPool Table 5 (MaxBoxAccV2, Choe et al. 2020)"),
    Exercise("maxboxacc", "MaxBoxAcc at one δ; predict, then measure: one τ or one per image, GLS vs a centre prior",
             "08_localization_exercises", 35, "code + written", "SimPool Table 5 (MaxBoxAccV2, Choe et al. 2020)"),
)

#: Exercises that wait for code not yet on main (name -> what they need); none at present.
PENDING: dict[str, str] = {}


def exercises_in(notebook: str) -> list[Exercise]:
    """The exercises of one exercise notebook (by stem)."""
    return [e for e in EXERCISES if e.notebook == notebook]


def _badges(stem: str) -> str:
    name = f"exercises/{stem}.ipynb"
    return (f"[![Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(name)}) "
            f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(name)})")


def readme_table(link_prefix: str = "notebooks/") -> str:
    """The Markdown table of the exercise notebooks (the main README's "Exercises" section): one row per notebook
    with its exercises, expected time, the series notebook it accompanies, Colab and Binder links."""
    lines = ["| Exercises | Beside | What you do (expected time) | Open |", "|---|---|---|---|"]
    number = {e.name: i for i, e in enumerate(EXERCISES, start=1)}
    for stem, (beside, title) in NOTEBOOKS.items():
        items = "; ".join(f"{number[e.name]}. {e.title} ({e.minutes} min)" for e in exercises_in(stem))
        total = sum(e.minutes for e in exercises_in(stem))
        lines.append(f"| [{title}]({link_prefix}exercises/{stem}.ipynb) | [{beside[:2]}]({link_prefix}{beside}.ipynb) "
                     f"| {items} — **{total} min** | {_badges(stem)} |")
    return "\n".join(lines)


def notes_table() -> str:
    """The per-exercise table of the instructor notes (``notebooks/exercises/README.md``)."""
    lines = ["| # | Exercise | Notebook | Check | Kind | Time | Paper |", "|---|---|---|---|---|---|---|"]
    for i, e in enumerate(EXERCISES, start=1):
        lines.append(f"| {i} | {e.title} | [{e.notebook}]({e.notebook}.ipynb) "
                     f"([solution](solutions/{e.notebook}.ipynb)) | `{e.check}` | {e.kind} | {e.minutes} min "
                     f"| {e.paper} |")
    total = sum(e.minutes for e in EXERCISES)
    lines.append(f"| | **all {len(EXERCISES)} exercises** | | | | **{total} min** | |")
    for name, why in PENDING.items():
        lines.append(f"| – | *pending:* {why} | | `check_{name}` | code | – | |")
    return "\n".join(lines)
