# Stage 6 (d) (GRASSMANN.md, "Other normalisations"): the wedge of unit vectors, ẑ_t ∧ ẑ_{t-Δ} with
# ẑ = z / max(‖z‖, ε), in place of the paper's normalised wedge: the lengths dropped, the angle kept (the
# pair's norm is |sin θ|). Same parameters. Put it after the arm's file.
# python train.py config/stage6/protocol.py config/study/grassmann_pre_all_learned_sub4.py config/stage6/unit.py
pairing = 'unit'
