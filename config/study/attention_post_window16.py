# Study arm attention_post_window16 (stage 5, a control): attention_post with each position reading only the
# last 16 positions and its own (attn_window = 16, the reach of the lags (1, ..., 16)): what locality alone
# costs attention (GRASSMANN.md, "Stage-5 controls"); 12,585,472 parameters, as attention_post.
# python train.py config/study/protocol.py config/study/attention_post_window16.py --seed=42
out_dir = 'out/study/attention_post_window16'
wandb_run_name = 'study-attention_post_window16'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'attention'
norm = 'post'
attn_window = 16
