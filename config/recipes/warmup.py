# Factor: a linear learning-rate warmup over the first 200 iterations (of 539 in one epoch); both recipes had none,
# and it is train.py's default since (the shared protocol, since the units became one token per <unk>)
warmup_iters = 200
