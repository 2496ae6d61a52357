"""Imported first by the experiments and the evaluation encoder, before torch: each runs on one thread so that two can run side by side.

torch.set_num_threads(1) does not reach OpenBLAS's own thread pool, which then spins on the other
core: two finetune_trial runs (training/experiments) side by side took 767 s each for 2000 steps without these variables and
about 410 s with them (train_all sets them for its workers the same way). Only a process that has not
loaded OpenBLAS yet is affected, so importing this from a test or a notebook changes nothing.
"""
import os

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

for _var in THREAD_VARIABLES:
    os.environ.setdefault(_var, "1")
