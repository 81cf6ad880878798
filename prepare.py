"""
WikiText-2 -> token ids, one flat uint16 memmap per split, plus meta.json. GPT-2 BPE (tiktoken) by
default; the paper's bert-base-uncased WordPiece (the `tokenizers` library) with --tokenizer bert.

Usage:
    python prepare.py                                   # download wikitext-2-raw-v1 (the paper's variant)
    python prepare.py --variant tokens                  # wikitext-2-v1 (with <unk>) instead
    python prepare.py --src PATH --variant tokens       # offline: a folder or zip holding the split files
    python prepare.py --url URL --out data/wikitext2    # another download address / output folder
    python prepare.py --tokenizer bert [--vocab vocab.txt]   # WordPiece, into data/wikitext2_bert
    python prepare.py --src testdata/wikitext-2 --variant tokens --sha256 testdata/wikitext-2/SHA256SUMS
                                                        # a slice or other copy, checked against its own hashes

Writes OUT/train.bin, OUT/val.bin, OUT/test.bin and OUT/meta.json (and OUT/vocab.txt for bert). Each
split file is encoded as one string with no special tokens added, except that in the tokens variant each
`<unk>` (a rare word) is one token of its own: BERT's [UNK], or for GPT-2 the first id past its
vocabulary (inside the padded 50,304). Spelled out, it would be 3-4 tokens of which all but the first
are free to predict. Every source file (and the vocabulary) is checked against its known sha256
first. Nothing is written unless all of it is good;
each file goes to a temporary name and is renamed when complete. Offline, tiktoken needs its cache:
TIKTOKEN_CACHE_DIR=<folder>.
"""
import argparse
import hashlib
import io
import json
import os
import re
import sys
import zipfile

import numpy as np

from checkpoints import write_atomic  # the one temporary-file-and-rename of the project

# -----------------------------------------------------------------------------
URLS = {
    'raw': ['https://wikitext.smerity.com/wikitext-2-raw-v1.zip',
            'https://huggingface.co/datasets/ggml-org/ci/resolve/main/wikitext-2-raw-v1.zip'],
    'tokens': ['https://wikitext.smerity.com/wikitext-2-v1.zip'],
}
SHA256 = {
    'wiki.train.raw': '6707892fa3788b5ab9ed78ab5ff37d9fe825f6011a2ad4fcd6a6d467f0e7da57',
    'wiki.valid.raw': '4cd0f6876d07a413aa911261ff6d363c72d757d47f0fdd6015702014c89cb9c7',
    'wiki.test.raw': '173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08',
    'wiki.train.tokens': '9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f',
    'wiki.valid.tokens': 'f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8',
    'wiki.test.tokens': 'd790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0',
}
SPLITS = {'train': 'train', 'val': 'valid', 'test': 'test'}  # our split name -> WikiText's
BERT_VOCAB_URL = 'https://huggingface.co/bert-base-uncased/resolve/main/vocab.txt'
BERT_VOCAB_SHA256 = '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3'
TOKENIZERS = {'gpt2': 'gpt2', 'bert': 'bert-base-uncased'}  # --tokenizer -> the name meta.json records
UNK = '<unk>'  # the tokens variant's rare word
BERT_UNK_ID = 100  # [UNK]
# -----------------------------------------------------------------------------


def fail(msg):
    sys.exit(f"prepare.py: error: {msg}")


def download(urls, what='WikiText-2'):
    """The file's bytes from the first address that answers, with a progress display."""
    import requests
    errors = []
    for url in urls:
        try:
            with requests.get(url, stream=True, timeout=30) as r:
                r.raise_for_status()
                total, buf = int(r.headers.get('content-length', 0)), io.BytesIO()
                for chunk in r.iter_content(1 << 16):
                    buf.write(chunk)
                    done = f"{buf.tell() / total:6.1%}" if total else f"{buf.tell() >> 20} MiB"
                    print(f"\rdownloading {url}: {done}", end='', file=sys.stderr)
                print(file=sys.stderr)
                return buf.getvalue()
        except requests.RequestException as e:
            print(f"{url}: {e}", file=sys.stderr)
            errors.append(url)
    if what != 'WikiText-2':
        fail(f"could not download {what} from {', '.join(errors)} (no network?). Use a local copy: --vocab PATH")
    fail(f"could not download WikiText-2 from {', '.join(errors)} (no network?). "
         "Download the zip elsewhere, or use a local copy: python prepare.py --src PATH "
         "(a folder or zip holding the three wiki.{train,valid,test} files)")


def read_sha256sums(path):
    """{file name: sha256} from a file in `sha256sum`'s format (one '<hex>  <name>' per line)."""
    try:
        lines = [line.split() for line in open(path, encoding='utf-8') if line.strip()]
    except OSError as e:
        fail(f"--sha256 {path}: cannot read it ({e})")
    if not lines or any(len(parts) != 2 or len(parts[0]) != 64 for parts in lines):
        fail(f"--sha256 {path}: expected lines of '<sha256>  <file name>', as sha256sum writes them")
    return {os.path.basename(name.lstrip('*')): digest.lower() for digest, name in lines}


def read_splits(src, variant, known=SHA256):
    """{our split: (file name, bytes, sha256)} from a folder, a zip file or a zip's bytes, each file
    checked against its hash in `known`."""
    names = {split: f"wiki.{theirs}.{variant}" for split, theirs in SPLITS.items()}
    if isinstance(src, str) and os.path.isdir(src):
        found = {f: os.path.join(d, f) for d, _, files in os.walk(src) for f in files}
        read = lambda name: open(found[name], 'rb').read()
    else:
        try:
            zf = zipfile.ZipFile(io.BytesIO(src) if isinstance(src, bytes) else src)
        except (zipfile.BadZipFile, OSError) as e:
            what = 'the downloaded file' if isinstance(src, bytes) else src
            fail(f"{what} is not a readable zip archive ({e}); a truncated download? Fetch it again, "
                 "or pass a folder holding the split files with --src")
        found = {os.path.basename(n): n for n in zf.namelist()}
        read = lambda name: zf.read(found[name])
    missing = [n for n in names.values() if n not in found]
    if missing:
        fail(f"{', '.join(missing)} not found in {src if isinstance(src, str) else 'the download'}: "
             f"the {variant} variant needs wiki.train.{variant}, wiki.valid.{variant} and wiki.test.{variant}")
    out = {}
    for split, name in names.items():
        try:
            data = read(name)
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            fail(f"cannot read {name} from {src if isinstance(src, str) else 'the download'}: {e} (truncated archive?)")
        digest = hashlib.sha256(data).hexdigest()
        if name not in known:
            fail(f"{name}: no sha256 for it in the --sha256 file: add one, or leave --sha256 out")
        if digest != known[name]:
            fail(f"{name}: sha256 mismatch, expected {known[name]}, got {digest}: "
                 "a corrupt or different copy of WikiText-2")
        out[split] = (name, data, digest)
    return out


def get_tokenizer(name, vocab=None, unk_id=None):
    """(encode, decode, vocab_size) of a tokenizer by its meta.json name: 'gpt2' (tiktoken's GPT-2 BPE), or
    'bert-base-uncased' (WordPiece, lowercased, through `tokenizers`; vocab: the text of its vocab.txt,
    one token per line, the line number its id). Neither adds special tokens. With `unk_id`, each `<unk>`
    (and the space before it) is that one id, decoded as ' <unk>'; vocab_size then covers it."""
    if name == 'gpt2':
        import tiktoken
        try:
            enc = tiktoken.get_encoding('gpt2')
        except Exception as e:  # offline without its cache, tiktoken's download fails (requests' ConnectionError)
            raise ValueError(f"cannot load tiktoken's GPT-2 BPE ({type(e).__name__}: {str(e)[:160]}); offline, tiktoken "
                             "needs TIKTOKEN_CACHE_DIR pointing at a folder holding its files (tiktoken's cache of the "
                             "GPT-2 BPE)") from None
        encode, decode, n_vocab = enc.encode_ordinary, enc.decode, enc.n_vocab
    elif name == 'bert-base-uncased':
        from tokenizers import BertWordPieceTokenizer
        tok = BertWordPieceTokenizer({t: i for i, t in enumerate(vocab.splitlines())}, lowercase=True)
        encode, n_vocab = (lambda text: tok.encode(text, add_special_tokens=False).ids), tok.get_vocab_size()
        decode = lambda ids: tok.decode(ids, skip_special_tokens=False).replace('[UNK]', UNK)
    else:
        raise ValueError(f"unknown tokenizer {name!r}: known are 'gpt2' and 'bert-base-uncased'")
    if unk_id is None:
        return encode, decode, n_vocab

    def encode_unk(text):
        pieces = re.split(r' ?' + UNK, text)  # the space goes with the <unk>, as GPT-2 joins a space to the word after it
        return [i for k, piece in enumerate(pieces) for i in ([unk_id] if k else []) + encode(piece)]

    def decode_unk(ids):  # GPT-2 has no such id: the runs between them, decoded
        runs, run = [], []
        for i in ids:
            if i == unk_id:
                runs.append(run)
                run = []
            else:
                run.append(i)
        return f' {UNK}'.join(decode(r) for r in runs + [run])
    return encode_unk, decode if name == 'bert-base-uncased' else decode_unk, max(n_vocab, unk_id + 1)


def units(meta):
    """The units a run's losses are in, in one line: tokenizer, WikiText-2 variant, how `<unk>` was
    encoded (meta.json written before one-token <unk> has no 'unk': it was spelled out)."""
    unk = '' if meta.get('variant') != 'tokens' else ', <unk> one token' if meta.get('unk') else ', <unk> as text'
    return f"{meta['tokenizer']}, {meta.get('variant', 'tokens')}{unk}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--variant', choices=('raw', 'tokens'), default='raw')
    ap.add_argument('--src', help='local folder or zip holding the three split files (no download)')
    ap.add_argument('--url', help='download address of the zip (default: the public copies)')
    ap.add_argument('--tokenizer', choices=tuple(TOKENIZERS), default='gpt2')
    ap.add_argument('--vocab', help='bert: a local bert-base-uncased vocab.txt (default: download it)')
    ap.add_argument('--out', help='output folder (default: data/wikitext2, or data/wikitext2_bert for bert)')
    ap.add_argument('--sha256', help="check the split files against this sha256sum-format file instead of "
                                     "WikiText-2's known hashes (a slice, or another copy)")
    args = ap.parse_args()
    out = args.out or os.path.join('data', 'wikitext2' if args.tokenizer == 'gpt2' else 'wikitext2_bert')

    if args.src and not os.path.exists(args.src):
        fail(f"--src {args.src} does not exist")
    known = read_sha256sums(args.sha256) if args.sha256 else SHA256
    splits = read_splits(args.src or download([args.url] if args.url else URLS[args.variant]), args.variant, known)

    vocab = None
    if args.tokenizer == 'bert':
        if args.vocab and not os.path.isfile(args.vocab):
            fail(f"--vocab {args.vocab} " + ("is not a file: give the path of a vocab.txt" if os.path.exists(args.vocab)
                                            else "does not exist"))
        vocab = open(args.vocab, 'rb').read() if args.vocab else download([BERT_VOCAB_URL], 'the BERT vocabulary')
        digest = hashlib.sha256(vocab).hexdigest()
        if digest != BERT_VOCAB_SHA256:
            fail(f"vocab.txt: sha256 mismatch, expected {BERT_VOCAB_SHA256}, got {digest}: not bert-base-uncased's vocabulary")
    try:
        tok_name, vocab_text = TOKENIZERS[args.tokenizer], vocab.decode('utf-8') if vocab else None
        encode, _, vocab_size = get_tokenizer(tok_name, vocab_text)
        unk_id = None if args.variant == 'raw' else BERT_UNK_ID if args.tokenizer == 'bert' else vocab_size
        if unk_id is not None:
            encode, _, vocab_size = get_tokenizer(tok_name, vocab_text, unk_id)
    except Exception as e:  # get_tokenizer's own message says what to do offline
        fail(f"cannot load the {args.tokenizer} tokenizer: {e}")
    meta = {'tokenizer': TOKENIZERS[args.tokenizer], 'vocab_size': vocab_size, 'dataset': 'wikitext-2',
            'variant': args.variant, 'unk': {'text': UNK, 'id': unk_id} if unk_id is not None else None, 'splits': {}}
    meta['units'] = units(meta)
    arrays = {}
    for split, (name, data, digest) in splits.items():
        text = data.decode('utf-8')
        ids = np.array(encode(text), dtype=np.uint16)  # both vocabularies fit in uint16
        arrays[split] = ids
        meta['splits'][split] = {'file': name, 'sha256': digest, 'tokens': len(ids),
                                 'bytes': len(data), 'words': len(text.split())}
        print(f"{split}: {name}, {len(ids):,} tokens, {len(data):,} bytes, {meta['splits'][split]['words']:,} words")

    os.makedirs(out, exist_ok=True)
    files = [(f'{split}.bin', ids.tobytes()) for split, ids in arrays.items()]
    if vocab:
        files.append(('vocab.txt', vocab))
        meta['vocab_file'] = 'vocab.txt'
    files.append(('meta.json', json.dumps(meta, indent=2).encode()))  # last: without it the folder is not prepared
    for name, data in files:
        try:
            write_atomic(os.path.join(out, name), lambda f: f.write(data))
        except OSError as e:  # a full disk: one line, no half-written file
            fail(f"{e}. Free some space, then run prepare.py again")
    print(f"wrote {out}/{{train,val,test}}.bin and meta.json")


if __name__ == '__main__':
    main()
