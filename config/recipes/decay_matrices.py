# Factor: weight decay on matrices and embeddings only (the seed's: on every parameter)
weight_decay_on = 'matrices'
