# Factor: a linear learning-rate warmup over the first 200 iterations (of 539 in one epoch) (both recipes have none)
warmup_iters = 200
