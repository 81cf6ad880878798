# The study's protocol (README "Closing the gap"): one epoch, eager, every arm alike. Put it before the
# arm's file; an arm's file alone is that arm's full 30-epoch run in the paper's units.
# python train.py config/study/protocol.py config/study/grassmann_pre_layer.py --seed=42
epochs = 1
compile = False
log_interval = 50
