"""``python -m glsim_core ...``"""

import sys

try:
    from .cli import main
except ImportError as exc:  # a broken torch / timm / torchvision stack: only `env` can run, and it says what is wrong
    if sys.argv[1:2] != ["env"]:
        print(f"error: this command cannot run: {exc}. Run `python -m glsim_core env` to check the stack.",
              file=sys.stderr)
        sys.exit(1)
    from .envinfo import env_main

    sys.exit(env_main(sys.argv[2:]))

sys.exit(main())
