"""
nanoGPT-style configuration: module-level defaults, overridden by Python config files and then by
--key=value arguments, in the order given. Unlike nanoGPT's exec'd snippet, every key is checked.

Also what every run records of its code: code_version(), the git commit and whether files differ from it.

Usage (from a script whose defaults are module-level globals):
    from configurator import configure
    globals().update(configure({k: globals()[k] for k in config_keys}, sys.argv[1:], script=__file__))

    python train.py config/grassmann_wt2.py --batch_size=16 --lags="(1,2,4)" --wandb_run_name=x
    python train.py --help        # the script's usage, then every key with its default and comment
"""
import ast
import difflib
import os
import re
import subprocess
import sys
from ast import literal_eval

FENCE = '# ' + '-' * 77 + '\n'


def arm_name(run):
    """The arm a run's folder (or name) belongs to: study/grassmann_pre_layer-seed43 -> grassmann_pre_layer.
    train.py's wandb group and compare.py's rows both use it."""
    return re.sub(r'-seed\d+$', '', os.path.basename(os.path.normpath(run)))


def code_version():
    """The git commit of this code and whether tracked files differ from it ('unknown' outside a repository)."""
    git = ['git', '-C', os.path.dirname(os.path.abspath(__file__))]
    try:
        commit = subprocess.run(git + ['rev-parse', 'HEAD'], capture_output=True, text=True, timeout=30, check=True).stdout.strip()
        dirty = subprocess.run(git + ['status', '--porcelain', '--untracked-files=no'], capture_output=True, text=True,
                               timeout=30, check=True).stdout.strip() != ''
        return {'commit': commit, 'dirty': dirty}
    except (OSError, subprocess.SubprocessError):
        return {'commit': 'unknown', 'dirty': None}


def _unknown(key, config):
    close = difflib.get_close_matches(key, config, n=1)
    return f"unknown config key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _checked(key, value, default, where):
    """value, coerced to the type of the default; a clear error if it cannot be."""
    if default is None or value is None:
        return value  # None defaults take any value, and any key may be reset to None
    if isinstance(default, tuple) and isinstance(value, list):
        value = tuple(value)
    if isinstance(default, float) and type(value) is int:
        value = float(value)
    if type(value) is not type(default):
        raise ValueError(f"{where}: {key}={value!r} is a {type(value).__name__}, "
                         f"but {key} takes a {type(default).__name__} (default {default!r})")
    return value


def usage(script, defaults):
    """The script's docstring, then each key of its config block with its default and its comment."""
    text = open(script, encoding='utf-8').read()
    lines = [ast.get_docstring(ast.parse(text)).strip(), '', 'Keys (--key=value), with their defaults:']
    block = text.split(FENCE)[1] if text.count(FENCE) >= 2 else ''
    for line in block.splitlines():
        key = re.match(r'(\w+) = ', line)
        if key and key.group(1) in defaults:
            comment = line.split('#', 1)[1].strip() if '  #' in line else ''
            lines.append(f"  --{key.group(1)}={defaults[key.group(1)]!r}" + (f"   # {comment}" if comment else ''))
        elif line.startswith('# ') and not key:
            lines.append(f"  {line}")  # the block's own headings
    return '\n'.join(lines)


def configure(defaults, argv, script=None):
    """defaults, then each config file and --key=value of argv in order. With `script` (the calling
    file), --help or -h prints its usage and keys (usage()) and exits."""
    if script and any(a in ('--help', '-h') for a in argv):
        print(usage(script, defaults))
        sys.exit(0)
    config = dict(defaults)
    for arg in argv:
        if not arg.startswith('--'):
            if not os.path.isfile(arg):
                raise ValueError(f"config file {arg!r} not found (config files are Python files, e.g. config/grassmann_wt2.py)")
            scope = {}
            exec(compile(open(arg).read(), arg, 'exec'), scope)
            for key, value in scope.items():
                if key.startswith('_') or type(value).__name__ in ('module', 'function', 'type'):
                    continue
                if key not in config:
                    raise ValueError(f"{arg}: {_unknown(key, config)}")
                config[key] = _checked(key, value, defaults[key], arg)
            continue
        key, sep, text = arg[2:].partition('=')
        if not sep:
            raise ValueError(f"argument {arg!r} must be --key=value")
        if key not in config:
            raise ValueError(f"{arg}: {_unknown(key, config)}")
        try:
            value = literal_eval(text)
        except (SyntaxError, ValueError):
            value = text  # a bare string, e.g. --mixer=attention
        config[key] = _checked(key, value, defaults[key], arg)
    return config


def script_defaults(path):
    """A script's module-level config (the block between its first two dashed fences), without running it."""
    parts = open(path, encoding='utf-8').read().split(FENCE)
    if len(parts) < 3:
        raise ValueError(f"{path}: no config block between two '# ---' fences")
    scope = {}
    exec(compile(parts[1], path, 'exec'), scope)
    return {k: v for k, v in scope.items() if not k.startswith('_') and isinstance(v, (int, float, bool, str, tuple, type(None)))}
