"""glsim_core: the tested core behind the glsim notebooks.

GLSim (global-local similarity crops + aggregator, Rios et al.) and SimPool (a generic pooling framework and
attention-based pooling, Psomas et al.) on timm backbones. Subpackages: ``pooling``, ``selection``, ``models``,
``data``, ``train``, ``metrics``, ``viz``. Run ``python -m glsim_core --help`` for the command line.
"""

from .profiles import PROFILES, Profile, get_profile
from .runtime import amp_dtype, autocast, get_device, seed_everything

__version__ = "0.1.0"

# The one place that says where this repository lives: a fork sets these two and runs `make index` and
# `python -m glsim_core notebooks stamp` (README and 00_index badges, every notebook's Colab install cell).
#: GitHub ``owner/name`` of this repository (Colab/Binder links and the Colab install cell).
REPO_SLUG = "glsim-dev/glsim"
#: The branch or tag that badges open and the Colab cell installs. It must exist in ``REPO_SLUG`` (a test checks
#: it against the local clone): ``main`` until a release is tagged; then ``v<version>``.
COLAB_REF = "main"

__all__ = [
    "__version__", "REPO_SLUG", "COLAB_REF", "Profile", "PROFILES", "get_profile",
    "seed_everything", "get_device", "amp_dtype", "autocast",
]
