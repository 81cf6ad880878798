"""
nanoGPT-style configuration: module-level defaults, overridden by Python config files and then by
--key=value arguments, in the order given. Unlike nanoGPT's exec'd snippet, every key is checked.

Usage (from a script whose defaults are module-level globals):
    from configurator import configure
    globals().update(configure({k: globals()[k] for k in config_keys}, sys.argv[1:]))

    python train.py config/grassmann_wt2.py --batch_size=16 --lags="(1,2,4)" --wandb_run_name=x
"""
import difflib
import os
from ast import literal_eval


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


def configure(defaults, argv):
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
    fence = '# ' + '-' * 77 + '\n'
    parts = open(path, encoding='utf-8').read().split(fence)
    if len(parts) < 3:
        raise ValueError(f"{path}: no config block between two '# ---' fences")
    scope = {}
    exec(compile(parts[1], path, 'exec'), scope)
    return {k: v for k, v in scope.items() if not k.startswith('_') and isinstance(v, (int, float, bool, str, tuple, type(None)))}
