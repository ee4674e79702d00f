"""The graph, the objective, the schedules and the training loops."""
