"""Research scripts behind the pipeline's settings: each asks one question (its docstring's first line) and answers
it by training or scoring a variant of what train_all does, starting from the same `TrainingConfig`.

Run them from training/: `/usr/bin/python3 -m experiments.<name> --help`. Nothing here is imported by the pipeline;
docs/experiments.md lists every question with its command and outcome.
"""
