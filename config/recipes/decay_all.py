# Factor: weight decay on every parameter, biases and LayerNorms too (the seed's; ours: matrices only)
weight_decay_on = 'all'
