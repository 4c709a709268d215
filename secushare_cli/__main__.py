import sys

from secushare_cli.main import main

sys.exit(main())
