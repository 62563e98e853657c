"""glsim_core: the tested core behind the glsim notebooks.

GLSim (global-local similarity crops + aggregator, Rios et al.) and SimPool (a generic pooling framework and
attention-based pooling, Psomas et al.) on timm backbones, in two layers:

* the **methods layer** - ``pooling``, ``selection``, ``models``: the papers' methods, importing only torch, timm,
  numpy and each other downwards (pooling <- selection <- models);
* everything **above** it - ``data``, ``weights``, ``analysis``, ``train``, ``experiments``, ``exercises``, ``viz``,
  and the modules ``runtime``, ``profiles``, ``paths``, ``cli``, ``series``, ``notebook``.

``tests/test_layers.py`` reads every import and fails on an upward import or a cycle. Run
``python -m glsim_core --help`` for the command line.
"""

from . import _compat

_compat.install()  # old import paths (before the two-layer split) still resolve; see glsim_core/_compat.py

try:
    from . import weights  # noqa: E402,F401 - makes pretrained=True find the shipped backbones (weights.shipped)
except ImportError as _exc:  # a broken timm / torchvision: `python -m glsim_core env` must still run and say so
    STACK_ERROR: ImportError | None = _exc
else:
    STACK_ERROR = None
from .profiles import PROFILES, Profile, get_profile  # noqa: E402
from .runtime import amp_dtype, autocast, get_device, seed_everything  # noqa: E402

__version__ = "0.1.0"

# The one place that says where this repository lives: a fork sets these two and runs `make index` and
# `python -m glsim_core notebooks stamp` (README and 00_index badges, every notebook's Colab install cell).
#: GitHub ``owner/name`` of this repository (Colab/Binder links and the Colab install cell).
REPO_SLUG = "glsim-dev/glsim"
#: The branch or tag that badges open and the Colab cell installs. It must exist in ``REPO_SLUG`` (a test checks
#: it against the local clone): ``main`` until a release is tagged; then ``v<version>``.
COLAB_REF = "main"


def colab_url(name: str, ref: str = COLAB_REF) -> str:
    """Open-in-Colab link of ``notebooks/<name>`` at ``ref``."""
    return f"https://colab.research.google.com/github/{REPO_SLUG}/blob/{ref}/notebooks/{name}"


def binder_url(name: str, ref: str = COLAB_REF) -> str:
    """Binder link of ``notebooks/<name>`` at ``ref``."""
    return f"https://mybinder.org/v2/gh/{REPO_SLUG}/{ref}?urlpath=lab/tree/notebooks/{name}"

__all__ = [
    "__version__", "REPO_SLUG", "COLAB_REF", "Profile", "PROFILES", "get_profile",
    "seed_everything", "get_device", "amp_dtype", "autocast", "colab_url", "binder_url",
]
