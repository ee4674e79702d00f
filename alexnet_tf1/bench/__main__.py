from alexnet_tf1.bench.report import main

main()
