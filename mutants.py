"""
Mutation check of the test suite: each mutant is a one-line change that turns the code into something
the specification (GRASSMANN.md) or a fixed defect forbids. Each is applied alone to a temporary copy
of the repository, the tests that should notice it are run there, and the mutant counts as caught if
they fail. A surviving mutant is a decision no test pins. Not part of CI (about half an hour on 2 cores).

Usage:
    python mutants.py              # every mutant; exit status 1 if any survives
    python mutants.py --list       # what each mutant changes
    python mutants.py tied_head    # the named ones only
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.abspath(__file__))

# name: (file, the exact text replaced (must occur once), its replacement, the tests that must catch it)
MUTANTS = {
    # the block flows and the skeleton (the table of issue 13)
    'post_grassmann_gains_residual': ('model.py', 'x = self.drop(self.ln_1(self.mixer(x, cache=cache)))',
                                      'x = self.drop(self.ln_1(x + self.mixer(x, cache=cache)))', 'test_model.py'),
    'pre_loses_mixer_residual': ('model.py', 'x = x + self.drop(self.mixer(self.ln_1(x), cache=cache))',
                                 'x = self.drop(self.mixer(self.ln_1(x), cache=cache))', 'test_model.py'),
    'post_attention_becomes_pre': ('model.py', 'x = self.ln_1(x + self.drop(self.mixer(x, cache=cache)))',
                                   'x = x + self.drop(self.mixer(self.ln_1(x), cache=cache))', 'test_model.py'),
    'post_loses_ln2': ('model.py', 'return self.ln_2(x + self.drop(self.mlp(x)))', 'return x + self.drop(self.mlp(x))',
                       'test_model.py'),
    'no_final_layernorm': ('model.py', 'x = self.transformer.ln_f(x)', 'x = x', 'test_model.py'),
    'plucker_floor_1e-2': ('model.py', 'tuple(lags), config.plucker_eps, H', 'tuple(lags), 1e-2, H', 'test_model.py'),
    # the rest of the specification, line by line
    'pre_ffn_not_dropped': ('model.py', 'return x + self.drop(self.mlp(self.ln_2(x)))', 'return x + self.mlp(self.ln_2(x))',
                            'test_model.py'),
    'gate_swapped': ('mixer_ops.py', 'ctx.h_dtype = bias is not None, autocast_of(h), h.dtype\n        return alpha * h + (1 - alpha) * g',
                     'ctx.h_dtype = bias is not None, autocast_of(h), h.dtype\n        return (1 - alpha) * h + alpha * g', 'test_model.py'),
    'gate_input_order': ('mixer_ops.py', 'F.linear(torch.cat([hc, g.to(hc.dtype)], dim=-1), weight, bias)',
                         'F.linear(torch.cat([g.to(hc.dtype), hc], dim=-1), weight, bias)', 'test_model.py'),
    'mean_over_all_lags': ('mixer_ops.py', 'valid / valid.sum(0).clamp_min(1)', 'valid / len(lags)', 'test_model.py'),
    'strict_valid_lag': ('mixer_ops.py', 'valid = (pos >= torch.tensor(first_valid, device=z_all.device)',
                         'valid = (pos > torch.tensor(first_valid, device=z_all.device)', 'test_model.py'),
    'lag_reads_t_plus_1': ('mixer_ops.py', 'torch.arange(T, device=z_all.device) + keep - torch.tensor',
                           'torch.arange(T, device=z_all.device) + keep + 1 - torch.tensor', 'test_model.py'),
    # the lean mixer's hand-written backward passes and decoding step (issue 15)
    'lag_mean_drops_zy_gradient': ('mixer_ops.py', 'grad_y = grad_b + grad_zy * z', 'grad_y = grad_b', 'test_model.py'),
    'lag_mean_ignores_floor': ('mixer_ops.py', '/ (2 * s * root) * (n2 >= ctx.eps2)', '/ (2 * s * root)', 'test_model.py'),
    'wedge_grad_w_transposed': ('mixer_ops.py', 'grad_w = (grad_outer * z.unsqueeze(-1)).sum(-2)',
                                'grad_w = (grad_outer * z.unsqueeze(-2)).sum(-1)', 'test_model.py'),
    'gate_grad_alpha_sign': ('mixer_ops.py', 'grad_alpha = (grad_y * hc - grad_y * g)', 'grad_alpha = (grad_y * g - grad_y * hc)', 'test_model.py'),
    'backward_forgets_autocast': ('mixer_ops.py', 'W, x, grad_pre = W.to(ctx.cast), x.to(ctx.cast), grad_pre.to(ctx.cast)',
                                  'pass', 'test_model.py'),
    'gate_mix_keeps_h_and_cat': ('model.py', 'return GateMix.apply(h, hc, g, self.gate.weight, self.gate.bias)',
                                 'return torch.sigmoid(self.gate(torch.cat([h, g.to(h.dtype)], -1))) * (h - g) + g', 'test_model.py'),
    'decode_drops_gate_g_bias': ('mixer_decode.py', 'gate_g @ mixer.project.bias])', '0 * self.project.bias])', 'test_model.py'),
    'decode_ring_keeps_oldest': ('mixer_decode.py', "cache['z'], cache['n'] = z_all[:, 1:], start + 1", "cache['z'], cache['n'] = z_all[:, :-1], start + 1",
                                 'test_model.py'),
    'decode_mean_over_all_lags': ('mixer_decode.py', "w = terms.sum(1, keepdim=True) / tables['count'][row]", 'w = terms.sum(1, keepdim=True) / len(mixer.lags)',
                                  'test_model.py'),
    'decode_count_from_python': ('mixer_decode.py', "w = terms.sum(1, keepdim=True) / tables['count'][row]",
                                 "w = terms.sum(1, keepdim=True) / tables['count'].tolist()[row]", 'test_model.py'),
    'decode_plucker_steps_in_bf16': ('mixer_decode.py', 'torch.promote_types(h.dtype, torch.float32)', 'h.dtype', 'test_model.py'),
    'decode_gate_swapped': ('mixer_decode.py', 'torch.lerp(out[..., :d], h if', 'torch.lerp(h, out[..., :d] if', 'test_model.py'),
    'learned_weights_on_invalid_lags': ('model.py', 'masked_fill(~valid, -1e30)', 'masked_fill(~valid, 0.0)', 'test_model.py'),
    'untied_head': ('model.py', 'self.transformer.wte.weight = self.lm_head.weight', 'pass', 'test_model.py'),
    'no_position_table': ('model.py', 'x = x + self.transformer.wpe(', 'x = x + 0 * self.transformer.wpe(', 'test_model.py'),
    'attention_not_causal': ('model.py', 'scaled_dot_product_attention(q, k, v, is_causal=True)',
                             'scaled_dot_product_attention(q, k, v, is_causal=False)', 'test_model.py'),
    'attention_one_head': ('model.py', 't.view(B, T, self.n_head, C // self.n_head)', 't.view(B, T, 1, C)', 'test_model.py'),
    'generate_keeps_first_window': ('model.py', 'logits, _ = forward(idx[:, -window:] if window else idx, cache=cache)',
                                    'logits, _ = forward(idx[:, :window] if window else idx, cache=cache)', 'test_model.py'),
    # the evaluation protocol
    'eval_batch_weighted': ('data.py', 'n, r = float(scored.sum()), recall.sum().double()', 'n, r = 1.0, recall.sum().double()',
                            'test_eval.py'),
    # the recall tokens of the evaluation and the paired test (stage 7's analysis)
    'recall_unigrams': ('data.py', 'bigrams = rows[:, :-1].astype(np.int64) * 65536 + rows[:, 1:]',
                        'bigrams = rows[:, 1:].astype(np.int64)', 'test_eval.py -k recall'),
    'recall_first_occurrence': ('data.py', 'repeat[:, 1:] = sorted_[:, 1:] == sorted_[:, :-1]',
                                'repeat[:, :-1] = sorted_[:, 1:] == sorted_[:, :-1]', 'test_eval.py -k recall'),
    'recall_counts_unscored': ('data.py', 'recall = (torch.from_numpy(recall_targets(tokens)) & scored).to(device)',
                               'recall = torch.from_numpy(recall_targets(tokens)).to(device)', 'test_eval.py -k recall'),
    'other_keeps_recall_losses': ('data.py', "'other_loss': (loss_sum - recall_sum) / (n - r)", "'other_loss': loss_sum / (n - r)",
                                  'test_eval.py -k recall'),
    # the MQAR generator and its scoring (recall.py)
    'mqar_keys_with_replacement': ('recall.py', 'keys = rng.choice(np.arange(1, V // 2), D, replace=False)',
                                   'keys = rng.choice(np.arange(1, V // 2), D, replace=True)', 'test_recall.py -k definition'),
    'mqar_keys_from_the_values': ('recall.py', 'keys = rng.choice(np.arange(1, V // 2), D, replace=False)',
                                  'keys = rng.choice(np.arange(V // 2, V), D, replace=False)', 'test_recall.py -k definition'),
    'mqar_filler_a_key': ('recall.py', 'x = np.zeros((n, T), dtype=np.int64)', 'x = np.ones((n, T), dtype=np.int64)',
                          'test_recall.py -k definition'),
    'mqar_target_on_the_value': ('recall.py', 'x[i, where], x[i, where + 1], y[i, where] = keys, values, values',
                                 'x[i, where], x[i, where + 1], y[i, where + 1] = keys, values, values', 'test_recall.py -k definition'),
    'mqar_slots_uniform': ('recall.py', 'p = np.arange(1, slots + 1) ** (power_a - 1.0)', 'p = np.ones(slots)',
                           'test_recall.py -k power_law'),
    'mqar_odd_slots': ('recall.py', 'where = 2 * D + 2 * rng.choice(', 'where = 2 * D + 1 + 2 * rng.choice(', 'test_recall.py -k definition'),
    'mqar_held_out_trains': ('recall.py', '    return 2 * seed + 1', '    return 2 * seed', 'test_recall.py -k seed'),
    'mqar_train_seeds_odd_too': ('recall.py', 'return 2 * (seed * 1_000_003 + it)', 'return seed * 1_000_003 + it', 'test_recall.py -k seed'),
    'mqar_accepts_too_short': ('recall.py', 'if T < 4 * D or V // 2 - 1 < D or D < 1:', 'if V // 2 - 1 < D or D < 1:',
                               'test_recall.py -k refused'),
    'recall_scores_unscored_positions': ('recall.py', 'right += int((hit & (yb >= 0)).sum())', 'right += int(hit.sum())',
                                         'test_recall.py -k accuracy'),
    # the other normalisations (stage 6 (d))
    'unit_pairs_read_z': ('model.py', 'z, z_all, m = unit_vectors(z), unit_vectors(z_all), None if m is None else unit_vectors(m)',
                          'z, z_all, m = unit_vectors(z), z_all, None if m is None else unit_vectors(m)', 'test_model.py -k spec_written_out'),
    'unit_partners_as_they_are': ('model.py', 'z, z_all, m = unit_vectors(z), unit_vectors(z_all), None if m is None else unit_vectors(m)',
                                  'z, z_all = unit_vectors(z), unit_vectors(z_all)', 'test_model.py -k spec_written_out'),
    'unit_keeps_step_4': ('model.py', "self.eps if self.pairing == 'wedge' else None)", "self.eps if self.pairing in ('wedge', 'unit') else None)",
                          'test_model.py -k spec_written_out'),
    'rms_floor_1e-2': ('mixer_ops.py', 'UNIT_EPS = RMS_EPS = 1e-6', 'UNIT_EPS, RMS_EPS = 1e-6, 1e-2', 'test_model.py -k spec_written_out'),
    'rms_gain_unread': ('mixer_ops.py', 'return gain.view(p.shape[-2:]) * p * torch.rsqrt(', 'return p * torch.rsqrt(',
                        'test_model.py -k spec_written_out'),
    'rms_over_every_subspace': ('mixer_ops.py', 'p * torch.rsqrt(p.pow(2).mean(-1, keepdim=True) + RMS_EPS)',
                                'p * torch.rsqrt(p.pow(2).mean((-2, -1), keepdim=True) + RMS_EPS)', 'test_model.py -k spec_written_out'),
    'rms_gain_decayed': ('model.py', 'nn.Parameter(torch.ones(H * features)) if config.p_norm', 'nn.Parameter(torch.ones(H, features)) if config.p_norm',
                         'test_model.py -k other_normalisation'),
    'rms_with_linear_pairs_accepted': ('model.py', "if self.p_norm != 'none' and (self.mixer != 'grassmann' or self.pairing == 'linear'):",
                                       "if self.p_norm != 'none' and self.mixer != 'grassmann':", 'test_model.py -k other_normalisations'),
    'decode_skips_the_rms_norm': ('mixer_decode.py', "        if mixer.p_gain is not None:  # p_norm = 'rms'", "        if False:  # p_norm = 'rms'",
                                  'test_model.py -k decoding'),
    'decode_pairs_z_itself': ('mixer_decode.py', "    if mixer.pairing == 'unit':  # the pairs read unit vectors", "    if False:  # the pairs read unit vectors",
                              'test_model.py -k decoding'),
    'unit_flops_forgotten': ('flops.py', "total += 3 * H * r * (1 + K) if cfg.pairing == 'unit' else 0", 'total += 0', 'test_model.py -k flops'),
    'paired_df_is_n': ('stats.py', 'return t, len(d) - 1, student_t_p(t, len(d) - 1), len(d)',
                       'return t, len(d), student_t_p(t, len(d)), len(d)', 'test_eval.py -k paired'),
    'paired_by_rank_not_seed': ('stats.py', 'd = [x[s] - y[s] for s in seeds]',
                                'd = [a - b for a, b in zip(sorted(x.values()), sorted(y.values()))]', 'test_eval.py -k paired'),
    'chain_paired_swapped': ('compare.py', 'pair = paired(seeds[b], seeds[a])', 'pair = paired(seeds[b], seeds[b])',
                             'test_eval.py -k step_by_step'),
    'recall_table_gap_inverted': ('compare.py', 'gaps.append(\'-\' if b == label else f"{(mine - theirs) / theirs:+.1%}")',
                                  'gaps.append(\'-\' if b == label else f"{(theirs - mine) / theirs:+.1%}")', 'test_eval.py -k splits_recall'),
    'eval_skips_last_chunk': ('data.py', 'for c0 in range(0, block_size, stride):',
                              'for c0 in range(0, block_size - 1, stride):', 'test_eval.py'),
    'eval_no_extra_context': ('data.py', 'start = max(b0 + c1 - block_size, 0)', 'start = b0', 'test_eval.py'),
    # tests that could not fail before issue 11: each now catches a mutant of what it covers
    'paper_l12_batch_32': ('config/paper_grassmann_l12.py', 'batch_size = 16', 'batch_size = 32', 'test_train.py -k paper_configs'),
    'bench_times_in_seconds': ('bench.py', '        times.append((time.perf_counter() - t0) * 1000)\n    return statistics.median',
                               '        times.append(time.perf_counter() - t0)\n    return statistics.median', 'test_bench.py'),
    # defects fixed for issue 11, reverted one at a time
    'mfu_substring_lookup': ('flops.py', "if re.search(rf'(?<![\\w-]){re.escape(k)}(?![\\w])', name)), None)",
                             'if k in name), None)', 'test_model.py::test_mfu_uses_the_device_peak_and_refuses_to_guess'),
    'config_ints_unchecked': ('model.py', 'if not isinstance(value, int) or isinstance(value, bool):', 'if False:',
                              'test_model.py::test_bad_config_values_raise_a_clear_error'),
    'damaged_checkpoint_traceback': ('checkpoints.py', 'except Exception as e:  # a truncated', 'except ZeroDivisionError as e:  # a truncated',
                                     'test_train.py::test_a_damaged_checkpoint_is_named_not_a_traceback'),
    'resume_forgets_settings': ('train.py', 'config = {**configure({**defaults, **stored}, sys.argv[1:]), **this_run}',
                                'config = {**configure(defaults, sys.argv[1:]), **this_run}',
                                'test_train.py::test_resume_without_the_config_file_keeps_the_run_settings'),
    'negative_eval_stride': ("train.py", "('eval_stride', 0)", "('eval_stride', -100)", 'test_train.py::test_train_explains_bad_values'),
    'zero_epochs': ("train.py", "('epochs', 1)", "('epochs', 0)", 'test_train.py::test_train_explains_bad_values'),
    'sample_bert_starts_with_newline': ('sample.py', "start = '=' if ckpt['tokenizer'] == 'bert-base-uncased' else '\\n'",
                                        "start = '\\n'", 'test_train.py::test_sample_starts_wordpiece_models_without_a_prompt'),
    'bench_gpu_memory_of_forward': ('bench.py', "before = torch.cuda.memory_allocated()\n        fn()",
                                    "before = torch.cuda.memory_allocated()\n        saved_fn()",
                                    'test_bench.py::test_gpu_memory_of_a_train_step_covers_the_whole_step'),
    'sprint_never_retries': ('sprint.py', "pending.insert(0, (*entry[:2], 'default'))", 'pass',
                             'test_train.py -k compile_mode_starts_again'),
    'bench_state_counts_capacity': ('bench.py', "value = value[:, :, :, :layer['n']]", 'pass', 'test_bench.py'),
    'bench_state_without_summaries': ('bench.py', 'if torch.is_tensor(value):', "if key in ('kv', 'z'):",
                                      'test_bench.py -k decoding_state'),
    'bench_child_drops_space_args': ('bench.py', "argv = [f'--device={args.device}', f'--dtype={args.dtype}', f'--seq_lens={T}',",
                                     "argv = [a for a in sys.argv[1:] if not a.startswith(('--seq_lens', '--json', '--plot'))] + [f'--seq_lens={T}',",
                                     'test_bench.py::test_bench_writes_rows_table_and_plot'),
    # the units and the seed's recipe (issue 22)
    'unk_spelled_out': ('prepare.py', "unk_id = None if args.variant == 'raw' else", "unk_id = None if True else",
                        'test_train.py -k "prepare_writes_the_slice or prepare_gpt2_path"'),
    'unk_keeps_its_space': ('prepare.py', "re.split(r' ?' + UNK, text)", "re.split(UNK, text)", 'test_train.py -k prepare_gpt2_path'),
    'gpt2_unk_is_endoftext': ('prepare.py', "BERT_UNK_ID if args.tokenizer == 'bert' else vocab_size",
                              "BERT_UNK_ID if args.tokenizer == 'bert' else vocab_size - 1", 'test_train.py -k prepare_gpt2_path'),
    'bert_decodes_unk_as_unk_token': ('prepare.py', ".replace('[UNK]', UNK)", "", 'test_train.py -k one_token_unk'),
    'raw_variant_gets_unk': ('prepare.py', "unk_id = None if args.variant == 'raw' else", "unk_id = None if False else",
                             'test_train.py -k raw_variant'),
    'torch_init_ties_head_init': ('model.py', 'torch.nn.init.normal_(self.transformer.wte.weight, mean=0.0, std=1.0)', 'pass',
                                  'test_model.py -k torch_init'),
    'torch_init_is_ours': ("model.py", "if config.init == 'normal':", "if True:", 'test_model.py -k torch_init'),
    'decay_all_decays_matrices': ('model.py', "decayed = (lambda n, p: True) if decay_on == 'all'",
                                  "decayed = (lambda n, p: p.dim() >= 2) if decay_on == 'all'", 'test_model.py -k optimizer'),
    'train_ignores_decay_on': ('train.py', '(beta1, beta2), device_type, weight_decay_on)', '(beta1, beta2), device_type)',
                               'test_train.py -k seed_recipe_settings'),
    'seed_config_decays_matrices': ('config/seed/grassmann.py', "weight_decay_on = 'all'", "weight_decay_on = 'matrices'",
                                    'test_train.py -k seed_configs'),
    'compare_mixes_units': ('compare.py', "return cfg['dataset'], cfg['block_size'], units_of(r), stride",
                            "return cfg['dataset'], cfg['block_size'], r.get('tokenizer'), stride", 'test_eval.py -k refuses_to_mix'),
    # the training loop's own decisions (issue 24): a replay by hand of 11 steps pins them
    'no_grad_clip': ('train.py', 'torch.nn.utils.clip_grad_norm_(raw_model.parameters(), grad_clip)', 'pass',
                     'test_train.py -k replayed_by_hand'),
    'epochs_not_reshuffled': ('train.py', 'torch.from_numpy(epoch_order(n_train, epoch, seed))',
                              'torch.from_numpy(epoch_order(n_train, 0, seed))', 'test_train.py -k replayed_by_hand'),
    'adam_betas_swapped': ('train.py', '(beta1, beta2), device_type, weight_decay_on)', '(beta2, beta1), device_type, weight_decay_on)',
                           'test_train.py -k replayed_by_hand'),
    'warmup_shape': ('train.py', 'return learning_rate * (it + 1) / (warmup_iters + 1)', 'return learning_rate * it / warmup_iters',
                     'test_train.py -k replayed_by_hand'),
    'cosine_ignores_min_lr': ('train.py', 'return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)',
                              'return 0.5 * (1.0 + math.cos(math.pi * ratio)) * learning_rate', 'test_train.py -k replayed_by_hand'),
    'trains_on_val': ('train.py', 'train_tokens = torch.from_numpy(train_data.astype(np.int64))',
                      'train_tokens = torch.from_numpy(val_data.astype(np.int64))', 'test_train.py -k replayed_by_hand'),
    'eval_in_train_mode': ('data.py', 'model.eval()\n    windows = eval_windows', 'model.train()\n    windows = eval_windows',
                           'test_eval.py test_train.py -k "evaluat or short_run"'),
    'sample_compiles_nothing': ('sample.py', 'on_token=printer() if stream else None, forward=forward)',
                                'on_token=printer() if stream else None, forward=None)', 'test_train.py -k compiled_sampling'),
    'results_forget_code': ('train.py', "               'code': code, 'data': data_identity,", "               'code': None, 'data': data_identity,",
                            'test_train.py -k short_run'),
    'compare_ignores_data': ('compare.py', '    if len(data) > 1:', '    if False:', 'test_eval.py -k different_data'),
    # stage 4, the partners (issue 23)
    'partner_reads_z_t': ('mixer_ops.py', 'u = z_all[keep - 1:keep - 1 + T].transpose(0, 1).reshape(B, T, H * r)',
                          'u = z_all[keep:keep + T].transpose(0, 1).reshape(B, T, H * r)', 'test_model.py'),
    'partner_decay_swapped': ('mixer_ops.py', 'running_summaries(u, F.logsigmoid(decay), torch.sigmoid(-decay))',
                              'running_summaries(u, F.logsigmoid(-decay), torch.sigmoid(decay))', 'test_model.py'),
    'partner_tau_init': ('model.py', 'torch.log(4.0 ** torch.arange(1,', 'torch.log(2.0 ** torch.arange(1,', 'test_model.py'),
    'partner_adjoint_not_shifted': ('mixer_ops.py', 'next_lg = F.pad(lg[:, 1:], (0, 0, 0, 1))', 'next_lg = lg', 'test_model.py'),
    'partner_grad_u_offset': ('mixer_ops.py', 'grad_all[keep - 1:keep - 1 + T] += grad_u', 'grad_all[keep:keep + T] += grad_u',
                              'test_model.py'),
    'partner_chunks_not_carried': ('mixer_ops.py', 'm = m + L.exp().unsqueeze(-1) * enter.unsqueeze(-2)', 'm = m', 'test_model.py'),
    'selective_ignores_h': ('model.py', 'self.decay_logits.view(1, 1, -1) if self.decay is None else self.decay(hc))',
                            'self.decay_logits.view(1, 1, -1) if self.decay is None else self.decay.bias.view(1, 1, -1))',
                            'test_model.py'),
    'decode_partner_state_lost': ('mixer_decode.py', "        cache['m'] = m\n", "        pass\n", 'test_model.py'),
    'partner_init_overwritten': ('model.py', "                    m.init_partners()", "                    pass", 'test_model.py'),
    'bench_partners_not_in_child': ('bench.py', "            f'--partners={args.partners}']", "            ]", 'test_bench.py'),
    # stage 5, the controls (issue 28) and the b_plü decision (issue 29)
    'window_one_key_short': ('model.py', 'return (j <= i) & (j >= i - window) if window else j <= i',
                             'return (j <= i) & (j > i - window) if window else j <= i', 'test_model.py -k window'),
    'window_cache_keeps_everything': ('model.py', "cache['kv'] = torch.stack([k, v])[:, :, :, -self.window:]",
                                      "cache['kv'] = torch.stack([k, v])", 'test_model.py -k window'),
    'unnormalised_pairs_normalised': ('mixer_ops.py', 'if eps is None:  # no normalisation', 'if False:  # no normalisation',
                                      'test_model.py -k spec_written_out'),
    'linear_pairs_swapped': ('model.py', 'return self.project(torch.cat([z, w], dim=-1).flatten(-2).to(dtype))',
                             'return self.project(torch.cat([w, z], dim=-1).flatten(-2).to(dtype))', 'test_model.py -k spec_written_out'),
    'decode_linear_pairs_swapped': ('mixer_decode.py', 'p = torch.cat([z, w], dim=-1).view(B, 1, -1)',
                                    'p = torch.cat([w, z], dim=-1).view(B, 1, -1)', 'test_model.py -k decoding_step_equals'),
    'decode_unnormalised_pairs_z_t': ('mixer_decode.py', 'terms = F.pad(zy[:, 1:], (0, 0, 0, 0, 1, 0))', 'terms = zy',
                                      'test_model.py -k decoding_step_equals'),
    'no_lag_zero_padded': ('model.py', 'g = self.project_pairs(z, w)  # step 6',
                           'g = self.project_pairs(z, w) * (w.abs().sum((-1, -2)) > 0).unsqueeze(-1)  # step 6',
                           'test_model.py -k b_plucker'),
    # issue 29: checkpoints as data, early stopping, wandb resume
    'checkpoint_loads_pickles': ('checkpoints.py', 'weights_only=not trust)', 'weights_only=False)', 'test_train.py -k crafted'),
    'patience_one_late': ('train.py', "sum(e['iter'] > best['iter'] for e in history) >= patience",
                          "sum(e['iter'] > best['iter'] for e in history) > patience", 'test_train.py -k early_stopping'),
    'wandb_new_run_on_resume': ('train.py', "wandb_id = ckpt.get('wandb_id') if ckpt else None", 'wandb_id = None',
                                'test_train.py -k wandb_groups'),
    'token_hash_of_source': ('train.py', "'bin_sha256': {s: token_sha256(data_dir, s)", "'bin_sha256': {s: meta['splits'][s]['sha256']",
                             'test_train.py -k short_run'),
    'runs_rerun_diverged': ('Makefile', 'test -f $$run/results.json -o -f $$run/diverged && continue',
                            'test -f $$run/results.json && continue', 'test_train.py -k make_runs'),
    'sprint_tunes_to_worst_dropout': ('sprint.py', 'p = min(best, key=best.get)', 'p = max(best, key=best.get)', 'test_train.py -k sprint_runs'),
    # one kind of machine per table (the session of 2026-12-07)
    'compare_mixes_dtypes': ('compare.py', 'if len(dtypes) > 1 and not args.mixed_dtypes:', 'if len(dtypes) > 2 and not args.mixed_dtypes:',
                             'test_eval.py -k one_dtype'),
    'runs_on_any_machine': ('Makefile', '$(if $(strip $(RUN_ARMS)),$(PY) hardware.py --dtype $(RUN_DTYPE) --expect $(RUN_MACHINE))',
                            '$(if $(strip $(RUN_ARMS)),-$(PY) hardware.py --dtype $(RUN_DTYPE) --expect $(RUN_MACHINE))',
                            'test_train.py -k make_runs'),
    'reproduction_ignores_ppl': ('compare.py', 'same, verdict = want == got, f', 'same, verdict = True, f', 'test_eval.py -k repeats'),
    'reproduction_ignores_seed': ('compare.py', "where = IO_KEYS - {'seed', 'compile'}", "where = IO_KEYS - {'compile'}",
                                  'test_eval.py -k repeats'),
    'stage6_skips_the_machine_check': ('Makefile', 'stage6: stage6-machine\n', 'stage6:\n', 'test_train.py -k stage6_arms'),
    'machine_check_on_every_cpu_passes': ('Makefile', '--reproduces $(STAGE6_DIR)/runs/attention_post-seed42 \\\n\t    --within 0.005; }',
                                          '--reproduces $(STAGE6_DIR)/runs/attention_post-seed42 \\\n\t    --within 0.005 || true; }',
                                          'test_train.py -k stage6_arms'),
    'machine_check_once_for_every_machine': ('Makefile', 'STAGE6_GATE = $(STAGE6_DIR)/machines/$(SLUG)',
                                             'STAGE6_GATE = $(STAGE6_DIR)/machines', 'test_train.py -k stage6_arms'),
    'same_cpu_by_label': ('hardware.py', 'same = cpu_model(ours) == cpu_model(theirs)', 'same = ours == theirs',
                          'test_train.py -k this_cpu_model'),
    'within_not_checked': ('compare.py', "same, verdict = abs(off) <= within, f", "same, verdict = True, f", 'test_eval.py -k repeats'),
    'reproduction_tuples_are_not_lists': ('compare.py', 'defaults = json.loads(json.dumps(train_defaults()))  # as a results.json',
                                          'defaults = train_defaults()  # as a results.json', 'test_eval.py -k repeats'),
    'data_split_unchecked': ('train.py', "load_split(data_dir, s, meta)", "load_split(data_dir, s)", 'test_faults.py -k broken'),
    'data_longer_split_taken': ('data.py', "size // 2 != expected", "size // 2 < expected", 'test_faults.py -k broken'),
    'data_broken_meta_traceback': ('data.py', "        except ValueError as e:\n            raise ValueError(f\"{path} is not valid JSON",
                                   "        except KeyError as e:\n            raise ValueError(f\"{path} is not valid JSON", 'test_faults.py -k broken'),
    'resume_on_other_tokens': ('train.py', "if trained_on and trained_on != data_identity['bin_sha256']:",
                               "if False:", 'test_faults.py -k other_tokens'),
    'wandb_no_network_kills_the_run': ('train.py', "        wandb.teardown()  # the failed run still holds its id in wandb's service\n",
                                       "        raise\n", 'test_faults.py -k wandb'),
    'greedy_samples': ('model.py', "            if temperature == 0:  # greedy", "            if False:  # greedy", 'test_model.py -k temperature_0'),
    'sample_top_k_unchecked': ('sample.py', "(('num_samples', 1), ('max_new_tokens', 1), ('top_k', 1))",
                               "(('num_samples', 1), ('max_new_tokens', 1))", 'test_train.py -k refuses_bad_values'),
    'window_sees_the_future': ('model.py', "return (j <= i) & (j >= i - window) if window else j <= i",
                               "return (j >= i - window) if window else j <= i", 'test_model.py -k every_variant_is_causal'),
    'conv_reads_the_next_position': ('mixer_ops.py', "out = bias.to(z.dtype).view(H, r) + taps[0] * z\n",
                                     "out = bias.to(z.dtype).view(H, r) + taps[0] * torch.roll(z, -1, 1)\n",
                                     'test_model.py -k every_variant_is_causal'),
    'checkpoint_checksums_unread': ('checkpoints.py', "            bad = z.testzip()", "            bad = None",
                                    'test_train.py -k damaged_checkpoint'),
    'amx_unnamed': ('hardware.py', "    return 'amx_bf16' in cpu_info()", '    return False', 'test_train.py -k hardware_names'),
    'stage7_on_any_machine': ('Makefile', '\t$(PY) hardware.py --expect cpu/bfloat16\n', '\t-$(PY) hardware.py --expect cpu/bfloat16\n',
                              'test_train.py -k make_stage7'),
    'stage7_reads_no_compile_decision': ('Makefile', 'TRAIN_ARGS="--compile=$$(', 'TRAIN_ARGS="--compile=False $$(', 'test_train.py -k make_stage7'),
    'compile_check_ignores_the_loss': ('compile_check.py', ' and\n               abs(r[\'compiled\'][\'loss\']', ' or\n               abs(r[\'compiled\'][\'loss\']',
                                       'test_train.py -k compile_check'),
    'runs_commit_nothing': ('Makefile', "COMMIT_RUN = $(if $(COMMIT),(cd", "COMMIT_RUN = $(if $(NOTHING),(cd", 'test_train.py -k make_runs'),
    'compile_check_any_arm': ('compile_check.py', '    return all(r[', '    return any(r[', 'test_train.py -k compile_check'),
    'sprint_stage7_after_the_rest': ('sprint.py', 'RUNS = ([(c, s) for s in (42, 43, 44) for c in STAGE7] + [(c, s) for s in (42, 43, 44) for c in PRIORITY]',
                                     'RUNS = ([(c, s) for s in (42, 43, 44) for c in PRIORITY] + [(c, s) for s in (42, 43, 44) for c in STAGE7]',
                                     'test_train.py -k stage7s_arms'),
    'bench_names_the_cpu_generically': ('bench.py', 'name = device_name(args.device)', "name = 'CPU'",
                                        'test_bench.py -k writes_rows'),
    'results_name_the_cpu_generically': ('train.py', "'device_name': machine,", "'device_name': device,", 'test_train.py -k short_run'),
    # issue 34: stage 6, a hybrid and a short convolution of z
    'conv_tap_off_by_one': ('mixer_ops.py', 'out = out + taps[j] * z_all[:, K - 1 - j:K - 1 - j + T]',
                            'out = out + taps[j] * z_all[:, K - j:K - j + T]', 'test_model.py -k z_conv'),
    'conv_drops_its_bias': ('mixer_ops.py', 'out = bias.to(z.dtype).view(H, r) + taps[0] * z', 'out = taps[0] * z',
                            'test_model.py -k z_conv'),
    'conv_init_not_identity': ('model.py', 'F.one_hot(torch.zeros(H * r, dtype=torch.long), config.z_conv)',
                               'F.one_hot(torch.full((H * r,), config.z_conv - 1), config.z_conv)', 'test_model.py -k z_conv'),
    'conv_taps_decayed': ('model.py', "p.dim() >= 2 and not n.endswith('conv_taps')", 'p.dim() >= 2', 'test_model.py -k z_conv'),
    'conv_decoding_forgets_the_past': ('mixer_ops.py', "past = cache.get('z_conv') if cache is not None else None", 'past = None',
                                       'test_model.py -k decoding'),
    'conv_read_by_nothing': ('model.py', 'if self.conv_taps is not None:  # every later step reads z̃\n            z = causal_conv(',
                             'if self.conv_taps is not None:  # every later step reads z̃\n            zc = causal_conv(',
                             'test_model.py -k z_conv'),
    'hybrid_ignores_attn_layers': ('model.py', "config.mixer == 'grassmann' and layer not in config.attn_layers",
                                   "config.mixer == 'grassmann'", 'test_model.py -k "hybrid or stage6"'),
    'hybrid_flops_as_grassmann': ('flops.py', "if cfg.mixer == 'attention' or layer in cfg.attn_layers:", "if cfg.mixer == 'attention':",
                                  'test_model.py -k flops'),
    'conv_flops_forgotten': ('flops.py', 'total += 2 * cfg.z_conv * H * r', 'total += 0', 'test_model.py -k flops'),
    'attn_layers_with_attention_accepted': ('model.py', "if self.attn_layers and self.mixer != 'grassmann':", 'if False:',
                                            'test_model.py -k attn_layers'),
    'negative_z_conv_accepted': ('model.py', 'if self.z_conv < 0 or self.z_conv and', 'if self.z_conv and',
                                 'test_model.py -k bad_config'),
    'stage6_keeps_another_dtype': ('Makefile', """grep -q '"dtype": "$(lastword $(subst /, ,$(RUN_MACHINE)))"' $$out/results.json || {""",
                                   'true || {', 'test_train.py -k stage6'),
    'bench_ignores_the_arm': ('bench.py', "arm = arm_keys(args.grassmann.split(',')) if args.grassmann else {'partners': args.partners}",
                              "arm = {'partners': args.partners}", 'test_bench.py -k study_arm'),
    'bench_attention_without_the_arm_sizes': ('bench.py', "return arm if mixer == 'grassmann' else {k: v for k, v in arm.items() if k in SHARED_KEYS}",
                                              "return arm if mixer == 'grassmann' else {}", 'test_bench.py -k study_arm'),
    'bench_decodes_the_paper_model_for_an_arm': ('bench.py', "GPT(GPTConfig(**{**model_keys(m, args), 'mixer': m,",
                                                 "GPT(GPTConfig(**{'mixer': m,", 'test_bench.py -k study_arm'),
    'train_imports_compare': ('train.py', 'from configurator import arm_name, code_version, configure',
                              'from configurator import code_version, configure\nfrom compare import arm_name', 'test_train.py -k outside_a_repository'),
    # issue 35: the faults a long run meets
    'full_disk_keeps_the_temporary_file': ('checkpoints.py', '            os.remove(tmp)', '            pass',
                                           'test_faults.py -k full_disk'),
    'full_disk_traceback': ('checkpoints.py', 'cause = f.error if f is not None and f.error is not None else e', 'cause = e',
                            'test_faults.py -k full_disk_stops'),
    'results_before_checkpoints': ('train.py', "        if checkpoint_every and len(history) % checkpoint_every == 0:\n"
                                   "            best_saved = save_checkpoints(best_saved)\n        if master:  # after the checkpoints",
                                   "        if master:\n            write_results()\n        if checkpoint_every and len(history) % "
                                   "checkpoint_every == 0:\n            best_saved = save_checkpoints(best_saved)\n        if False:  # after the checkpoints",
                                   'test_faults.py -k full_disk_stops'),
    'second_run_takes_the_folder': ('train.py', 'out_dir_lock = None if eval_only else lock_out_dir(out_dir)', 'out_dir_lock = None',
                                    'test_faults.py -k one_run_per_folder'),
    'eval_only_takes_the_lock': ('train.py', 'out_dir_lock = None if eval_only else lock_out_dir(out_dir)',
                                 'out_dir_lock = lock_out_dir(out_dir)', 'test_faults.py -k one_run_per_folder'),
    'prepare_full_disk_traceback': ('prepare.py', 'except OSError as e:  # a full disk', 'except ValueError as e:  # a full disk',
                                    'test_faults.py -k prepare'),
    'damaged_called_untrusted': ('checkpoints.py', '    if bad:\n        raise ValueError(f"{path} is damaged', '    if False:\n        raise ValueError(f"{path} is damaged',
                                 'test_train.py -k damaged_checkpoint'),
    'damaged_zip_traceback': ('checkpoints.py', "    except Exception:  # not a zip", "    except ZeroDivisionError:  # not a zip",
                              'test_train.py -k damaged_checkpoint'),
    'resume_takes_best_from_ckpt_pt': ('train.py', "if best and 'best_model' in ckpt:", 'if False:', 'test_faults.py -k killed'),
    'last_pt_without_best_weights': ('train.py', "best_model=None if best is None or best['iter'] == iter_num else best_weights",
                                     'best_model=None', 'test_faults.py -k killed'),
    'resumed_ckpt_pt_left_stale': ('train.py', 'if not best_saved or not (checkpoint_every', 'if not (checkpoint_every',
                                   'test_faults.py -k killed'),
    'tokenizer_offline_traceback': ('prepare.py', "except Exception as e:  # offline without its cache", "except ZeroDivisionError as e:  # offline without its cache",
                                    'test_faults.py -k offline'),
}


def copy_repo(dst):
    skip = {'.git', '.venv', 'out', 'data', 'logs', '__pycache__', '.pytest_cache', 'results'}
    shutil.copytree(ROOT, dst, ignore=lambda d, names: [n for n in names if n in skip or n.endswith('.pt')])


def run_mutant(name, file, old, new, tests):
    with tempfile.TemporaryDirectory() as tmp:
        repo = os.path.join(tmp, 'repo')
        copy_repo(repo)
        path = os.path.join(repo, file)
        text = open(path).read()
        if text.count(old) != 1:
            return 'stale', f"the text to replace occurs {text.count(old)} times in {file}: update mutants.py"
        open(path, 'w').write(text.replace(old, new))
        cmd = [sys.executable, '-m', 'pytest', '-x', '-q', '-p', 'no:cacheprovider', *shlex.split(tests)]
        p = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=1800)
        last = (p.stdout.strip().splitlines() or [''])[-1]
        return ('caught' if p.returncode == 1 else 'survived' if p.returncode == 0 else 'error'), last


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('names', nargs='*', help='mutants to run (default: all)')
    ap.add_argument('--list', action='store_true')
    args = ap.parse_args()
    unknown = [n for n in args.names if n not in MUTANTS]
    if unknown:
        sys.exit(f"mutants.py: error: unknown mutant(s) {', '.join(unknown)}; --list shows them")
    names = args.names or list(MUTANTS)
    if args.list:
        for n in names:
            file, old, new, tests = MUTANTS[n]
            print(f"{n}: {file}: {old.strip()!r} -> {new.strip()!r}  [{tests}]")
        return
    outcomes = {}
    for n in names:
        t0 = time.time()
        outcome, detail = run_mutant(n, *MUTANTS[n])
        outcomes[n] = outcome
        print(f"{outcome:>8}  {n}  ({time.time() - t0:.0f} s: {detail})", flush=True)
    caught = sum(o == 'caught' for o in outcomes.values())
    print(f"\n{caught} of {len(outcomes)} mutants caught" + ''.join(
        f"\n  {o}: {n}" for n, o in outcomes.items() if o != 'caught'))
    sys.exit(0 if caught == len(outcomes) else 1)


if __name__ == '__main__':
    main()
