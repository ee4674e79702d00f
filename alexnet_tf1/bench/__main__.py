import sys

from alexnet_tf1.bench.report import main

sys.exit(main())
