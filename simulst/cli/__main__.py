import sys

from simulst.cli import main

sys.exit(main())
