"""`python -m jaxescape`: the same command line as the `jaxescape` script."""

import sys

from .cli import main


sys.exit(main())
