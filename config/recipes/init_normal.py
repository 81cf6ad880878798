# Factor: our init, N(0, 0.02) weights and zero biases (the seed's: PyTorch's defaults)
init = 'normal'
