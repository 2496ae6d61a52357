"""Reference numbers for the TypeScript schedulers (python -m stepframe_train.scheduler_reference): one module per scheduler family."""
