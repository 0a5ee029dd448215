import sys

from beexnp.cli import main

sys.exit(main())
