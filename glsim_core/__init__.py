"""glsim_core: the tested core behind the glsim notebooks.

GLSim (global-local similarity crops + aggregator, Rios et al.) and SimPool (a generic pooling framework and
attention-based pooling, Psomas et al.) on timm backbones. Subpackages: ``pooling``, ``selection``, ``models``,
``data``, ``train``, ``metrics``, ``viz``. Run ``python -m glsim_core --help`` for the command line.
"""

from .profiles import PROFILES, Profile, get_profile
from .runtime import amp_dtype, autocast, get_device, seed_everything

__version__ = "0.1.0"

#: GitHub ``owner/name`` of this repository (Colab/Binder links and the Colab install cell).
REPO_SLUG = "glsim-dev/glsim"
#: The git ref that notebooks install on Colab: the release tag of this version.
COLAB_REF = f"v{__version__}"

__all__ = [
    "__version__", "REPO_SLUG", "COLAB_REF", "Profile", "PROFILES", "get_profile",
    "seed_everything", "get_device", "amp_dtype", "autocast",
]
