# Factor: the seed's init, PyTorch's defaults with the tied matrix N(0, 1) (ours: N(0, 0.02))
init = 'torch'
