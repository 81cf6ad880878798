# Stage 6 (d) (GRASSMANN.md, "Other normalisations"): an RMS norm with a learned gain on each subspace's mean
# Plücker vector p̄_t, after the lags are mixed; the arm is the unnormalised wedge, whose pairs keep their
# relative weight. +H·C(r, 2) parameters per layer (480). Put it after the arm's file.
# python train.py config/stage6/protocol.py config/study/grassmann_pre_all_learned_sub4_unnormalised.py config/stage6/rms.py
p_norm = 'rms'
