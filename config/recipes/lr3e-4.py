# Factor: learning rate 3e-4 instead of 1e-3 (the post-norm flow's early stall, README "Why our perplexities differ")
learning_rate = 3e-4
