from alexnet_tf1.experiments.paper import main

main()
