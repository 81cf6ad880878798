"""
The test suite's one setting: every test process, and every script the tests start (they inherit the
environment), runs PyTorch on one thread unless OMP_NUM_THREADS says otherwise. On 2 cores that
another busy process shares, two OpenMP threads wait on each other at every parallel region: 72 model
tests took 366 s beside a training run with 2 threads and 3.5 s with one. The tests' tensors are small;
one thread costs them little on an idle machine, and a busy one no longer decides how long they take.
"""
import os

os.environ.setdefault('OMP_NUM_THREADS', '1')
