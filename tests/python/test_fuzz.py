"""A fuzz test of learnflow's input handling (issue 8).

Thousands of mutated configs, data files and argument lists, generated from the examples and a
few small configs of our own with a fixed seed. Every case runs in a fresh directory with a fresh
output path and must end, within a time bound, with

- status 0 (it ran, or validated), 3 (a numerical failure), or
- status 2 (bad input) having written no file, with a message that names a config key (a dotted
  key such as `integrator.t_end`), an option, or a file.

A crash (a signal, 134, 139, any other status) or a timeout is a failure; the report prints each
failing case: its config, its auxiliary files and its command line, enough to reproduce it.

Most cases run `learnflow validate` (fast); a fraction run `learnflow run` with a step budget
(integrator.max_steps) and a small output.max_bytes so that a mutated config that is valid but
long (t_end = 1e19) ends quickly with status 3 or 2.

Run: LEARNFLOW_BIN=build/learnflow /usr/bin/python3 tests/python/test_fuzz.py
Environment: LEARNFLOW_FUZZ_CASES (default 2000), LEARNFLOW_FUZZ_SEED (default 8),
LEARNFLOW_FUZZ_JOBS (default 2).
"""
import concurrent.futures
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

ROOT = Path(os.environ.get("LEARNFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("LEARNFLOW_BIN", ROOT / "build" / "learnflow"))
CASES = int(os.environ.get("LEARNFLOW_FUZZ_CASES", "2000"))
SEED = int(os.environ.get("LEARNFLOW_FUZZ_SEED", "8"))
JOBS = int(os.environ.get("LEARNFLOW_FUZZ_JOBS", "2"))
TIMEOUT = 30.0          # seconds per case; the slowest valid case takes well under a second
RUN_FRACTION = 0.15     # cases that run instead of validating
ARGS_FRACTION = 0.08    # cases whose argument list is mutated (the config stays valid)
# Run cases: a step budget and a file budget, so that valid long runs end quickly.
RUN_GUARDS = ["--set", "integrator.max_steps=1500", "--set", "output.max_bytes=2e7"]

# ---- the seeds: configs (with their auxiliary files) ---------------------------------------

GRAPH = """\
[network]
activation = "tanh"
seed = 3

[[network.population]]
name = "u"
size = 2
role = "input"

[[network.population]]
name = "h"
size = 4

[[network.population]]
name = "y"
size = 1
role = "output"

[[network.projection]]
from = "u"
to = "h"
plastic = true

[[network.projection]]
name = "hh"
from = "h"
to = "h"
edges = "graph.csv"

[[network.projection]]
from = "h"
to = "y"
weights = "w.csv"
plastic = true

[model]
type = "costate"
gamma = 10.0

[input]
kind = "sequence"
file = "seq.csv"
target_file = "targets.csv"
present = 2.0

[integrator]
t_end = 8.0

[output]
file = "out.h5"
sample_dt = 0.1
record = { x = "all", W = "norm" }
"""

GRAPH_FILES = {
    "graph.csv": "src,dst,weight\n0,1,0.5\n1,2,-0.3\n2,3\n3,0,0.2\n",
    "w.csv": "0.1,0.2,0.3,0.4\n",
    "seq.csv": "a,b\n0.5,-0.5\n1,0\n0,1\n",
    "targets.csv": "0.2\n-0.2\n0.4\n",
}

TRAIN_CSV = """\
[network]
layers = [3, 5, 2]
plastic = true
seed = 2

[model]
type = "backprop"
eta = 0.1

[data]
train = "train.csv"
train_labels = "labels.csv"
test_fraction = 0.25

[train]
epochs = 2
batch = 3
present = 1.0

[output]
record = { x = "all" }
"""

TRAIN_FILES = {
    "train.csv": "f0,f1,f2\n" + "".join(f"{(i * 7) % 5 / 5},{(i * 3) % 4 / 4},{i % 2}\n" for i in range(12)),
    "labels.csv": "".join(f"{i % 2}\n" for i in range(12)),
}

INIT_FROM_FILE = """\
[network]
layers = [2, 3, 1]
init = { weights = "file", bias = "file", file = "init.h5" }

[model]
type = "costate"

[input]
kind = "step"
t0 = 0.5
value = [1.0, -1.0]
target = [0.3]

[integrator]
stepper = "rkck54"
t_end = 2.0

[output]
sample_dt = 0.05
"""

INIT_SOURCE = """\
[network]
layers = [2, 3, 1]
plastic = true
init = { bias = "normal" }

[model]
type = "costate"

[input]
value = [1.0, -1.0]
target = [0.3]

[integrator]
t_end = 1.0
"""

PHASES = """\
[network]
layers = [3, 3, 3]
activation = "asinh"
seed = 4

[model]
type = "gaitprop"

[input]
kind = "sequence"
values = [[0.5, -0.5, 0.1], [1.0, 0.2, -0.3]]
targets = [[0.1, 0.2, 0.0], [-0.3, 0.4, 0.1]]
phases = [{ name = "forward", until = { residual = 1e-6 }, max_duration = 5.0 }, { name = "target", duration = 1.0 }]

[integrator]
stepper = "dopri5"
t_end = 12.0
on_divergence = "continue"

[output]
sample_dt = 0.25
waves = "first:3"
residual = true
"""

# How each example is shortened before it is mutated (its text, so that mutations act on it).
EXAMPLE_EDITS = {
    "dtp_relaxation.toml": [(r"t_end = [0-9.e+]+", "t_end = 60.0")],
    "xor_costate.toml": [(r"t_end = [0-9.e+]+", "t_end = 40.0")],
    "gaitprop_patterns.toml": [(r"t_end = [0-9.e+]+", "t_end = 30.0")],
    "backward_wave.toml": [(r"t_end = [0-9.e+]+", "t_end = 45.0")],
    "gnn_planted_clique.toml": [(r"t_end = [0-9.e+]+", "t_end = 5.0")],
    "gnn_sbm.toml": [(r"t_end = [0-9.e+]+", "t_end = 5.0")],
    "digits_costate.toml": [(r"epochs = \d+", "epochs = 1"), (r"\[data\]", "[data]\nlimit = 60")],
    "digits_backprop.toml": [(r"epochs = \d+", "epochs = 1"), (r"\[data\]", "[data]\nlimit = 60")],
    "digits_gaitprop.toml": [(r"epochs = \d+", "epochs = 1"), (r"\[data\]", "[data]\nlimit = 60")],
    "digits_dtp.toml": [(r"epochs = \d+", "epochs = 1"), (r"\[data\]", "[data]\nlimit = 60")],
}


def seeds():
    """(name, config text, {aux file: text}) of every seed."""
    out = [("graph", GRAPH, GRAPH_FILES), ("train_csv", TRAIN_CSV, TRAIN_FILES),
           ("init_from_file", INIT_FROM_FILE, {}), ("phases", PHASES, {})]
    for path in sorted((ROOT / "examples").glob("*.toml")):
        if path.name == "fashion_mnist_costate.toml":
            continue  # 60000 images: too slow to load thousands of times
        text = path.read_text()
        for pattern, replacement in EXAMPLE_EDITS.get(path.name, []):
            text, n = re.subn(pattern, replacement, text, count=1)
            assert n == 1, (path.name, pattern)
        # Data files next to the example (examples/karate/): read where they are.
        text = text.replace('"karate/', f'"{ROOT / "examples" / "karate"}/')
        out.append((path.stem, text, {}))
    return out


# ---- mutations -----------------------------------------------------------------------------

BAD_VALUES = [
    '""', '"abc"', '"' + "x" * 5000 + '"', '"λ∞ ü 中文"', '"\\u0001"', '"."', '".."', '"a/b"',
    '"a,b"', '"/"', '" "', "true", "false", "0", "-1", "1", "2", "-0.0", "0.0", "1e19", "-1e19",
    "1e308", "-1e308", "1e-300", "5e-324", "nan", "+nan", "-nan", "inf", "-inf", "+inf",
    "9223372036854775807", "-9223372036854775808", "9007199254740993", "4294967296", "1.5",
    "[]", "[1, 2]", "[[1]]", "[nan]", "[inf, 1]", "[[0, 1, nan]]", "[[0, 0, 1e308]]", "[1e19]",
    '["a"]', "{}", "{ x = 1 }", "1979-05-27T07:32:00Z", "07:32:00", '"every:0"', '"every:-3"',
    '"first:0"', '"none"', '"norm"', '"all"', '"file"', '"orthogonal"', '"zeros"',
    "[" * 70 + "]" * 70, "{ a = " * 70 + "1" + " }" * 70,
]

EXTRA_LINES = [
    "max_bytes = 1", "max_bytes = 1e-300", "max_bytes = nan", "sample_dt = 1e-12",
    "sample_dt = 1e-300", "t_end = 1e19", "t_end = 1e300", "t0 = -1e300", "present = 1e-12",
    "present = 1e-300", "epochs = 1000000000", "batch = 1000000000", "limit = 1",
    "layers = [2, 100000000, 1]", "layers = [1000000000, 1000000000]", "layers = [0]",
    'name = "."', 'name = "a/b"', 'name = ""', 'name = ".."', 'name = "x\\u0000y"',
    'record = { x = "every:0" }', 'record = { "x/.." = "all" }', "waves = \"first:99999999999\"",
    "phases = [{ name = \"a\", duration = 1e-12 }]",
    "phases = [{ name = \".\", duration = 1.0 }]",
    "phases = [{ name = \"a\", until = { residual = 1e-300 }, max_duration = 1e19 }]",
    "values = [[nan, 1]]", "targets = [[inf]]", "value = nan", "value = [inf, 1]",
    "edges = [[0, 1, nan]]", "edges = [[0, 1e19]]", "edges = [[-1, 0]]", "target = [nan]",
    "scale = 1e308", "bias_scale = inf", "max_steps = 0", "max_steps = 9223372036854775807",
    "dt0 = 1e-300", "dt_max = 1e-300", "rtol = 1e-300", "atol = 0", "flush_every = 0",
    "flush_seconds = 1e19", "flush_latency = 1e-300", "examples = [0, 1e19]", "seed = -1",
    "classes = 1000000000", "test_fraction = 0.9999", "eval_every = 1", "gamma = 1e-300",
    "tau = 1e-300", "c = 1e308", "iterations = 1000000000", "decoder_rate = 1e308",
    "a" + ".b" * 80 + " = 1", "[" + "t." * 40000 + "t]", "[[" + "t." * 100 + "t]]",
    "x = " + "[" * 100000 + "]" * 100000, "x = '''unterminated", 'x = "\\',
]

HEADERS = ["[network]", "[model]", "[input]", "[integrator]", "[output]", "[data]", "[train]",
           "[[network.population]]", "[[network.projection]]", "[network.init]", "[output.record]",
           "[input.phases]", "[[input.phases]]", "[zzz]"]

CSV_FIELDS = ["nan", "inf", "-inf", "1e400", "abc", "", " ", "1e19", "-1", "0", "3.5", "1,2",
              "0x10", "1e-400", "λ", "\x00", "9" * 400]


def mutate_value(rng, line):
    """`line` with the value after its `=` replaced or perturbed."""
    key, _, value = line.partition("=")
    numbers = list(re.finditer(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", value))
    if numbers and rng.random() < 0.5:
        m = rng.choice(numbers)
        x = float(m.group(0))
        choice = rng.randrange(5)
        if choice == 0:
            new = repr(x * 10.0 ** rng.randint(-40, 40))
        elif choice == 1:
            new = repr(-x)
        elif choice == 2:
            new = rng.choice(["0", "0.0", "nan", "inf", "-inf", "1e19", "1e-320"])
        elif choice == 3:
            new = str(rng.randint(-(2 ** 63), 2 ** 63 - 1))
        else:
            new = repr(x + rng.choice([-1, 1]) * 1e-9)
        value = value[:m.start()] + new + value[m.end():]
        return f"{key}={value}"
    return f"{key}= {rng.choice(BAD_VALUES)}"


def mutate_text(rng, text):
    lines = text.split("\n")
    kind = rng.randrange(13)
    i = rng.randrange(len(lines))
    if kind == 0:  # delete a line
        del lines[i]
    elif kind in (1, 2, 3):  # a value replaced or perturbed
        candidates = [k for k, l in enumerate(lines) if "=" in l and not l.lstrip().startswith("#")]
        if candidates:
            k = rng.choice(candidates)
            lines[k] = mutate_value(rng, lines[k])
    elif kind == 4:  # a line repeated (duplicate key or table)
        lines.insert(i, lines[i])
    elif kind in (5, 6):  # an extra key, in some table
        lines.insert(i, rng.choice(EXTRA_LINES))
    elif kind == 7:  # truncated
        cut = rng.randrange(len(text) + 1)
        return text[:cut]
    elif kind == 8:  # two lines swapped
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == 9:  # a header replaced or added
        headers = [k for k, l in enumerate(lines) if l.startswith("[")]
        if headers and rng.random() < 0.5:
            lines[rng.choice(headers)] = rng.choice(HEADERS)
        else:
            lines.insert(i, rng.choice(HEADERS))
    elif kind == 10:  # random bytes inserted
        pos = rng.randrange(len(text) + 1)
        junk = "".join(rng.choice("[]{}=.,\"'#\\\n \t0aλ\x01\x7f") for _ in range(rng.randint(1, 8)))
        return text[:pos] + junk + text[pos:]
    elif kind == 11:  # a name made invalid
        candidates = [k for k, l in enumerate(lines) if re.match(r"\s*(name|from|to)\s*=", l)]
        if candidates:
            k = rng.choice(candidates)
            key = lines[k].partition("=")[0]
            lines[k] = key + "= " + rng.choice(['"."', '".."', '"a/b"', '""', '"x\\ty"', '"/"',
                                                '"ok.name-1"', '"λ"', '"' + "n" * 300 + '"'])
    else:  # a key's name changed (unknown keys)
        candidates = [k for k, l in enumerate(lines) if "=" in l and not l.lstrip().startswith("#")]
        if candidates:
            k = rng.choice(candidates)
            key, _, value = lines[k].partition("=")
            lines[k] = key.rstrip() + rng.choice(["x", "_", ".y", "λ"]) + " =" + value
    return "\n".join(lines)


def mutate_csv(rng, text):
    lines = text.split("\n")
    kind = rng.randrange(7)
    i = rng.randrange(len(lines))
    if kind == 0:
        del lines[i]
    elif kind in (1, 2):
        fields = lines[i].split(",")
        fields[rng.randrange(len(fields))] = rng.choice(CSV_FIELDS)
        lines[i] = ",".join(fields)
    elif kind == 3:
        lines.insert(0, rng.choice(["x,1", "1,x", "a,b,c", "nan,nan", "#", "src,dst,weight,extra"]))
    elif kind == 4:
        return ""
    elif kind == 5:
        lines.insert(i, ",".join(rng.choice(CSV_FIELDS) for _ in range(rng.randint(1, 4))))
    else:
        cut = rng.randrange(len(text) + 1)
        return text[:cut]
    return "\n".join(lines)


def mutate_args(rng, args):
    """`args` (["run"|"validate", CONFIG, ...]) with one mutation of the command line."""
    args = list(args)
    kind = rng.randrange(14)
    if kind == 0:
        args.append(rng.choice(["--bogus", "-x", "--", "extra", "--set"]))
    elif kind == 1:
        args += ["--threads", rng.choice(["0", "-1", "abc", "1e3", "99999999999999999999", "1025",
                                          "", "2"])]
    elif kind == 2:
        args += ["--set", rng.choice(["noequals", "=5", "a..b=1", ".=1", "integrator.=1",
                                      "integrator.t_end", "integrator.t_end=", "x=1",
                                      "integrator.t_end=nan", "integrator.t_end=[[[[1]]]]",
                                      "integrator.t_end=" + "[" * 200 + "]" * 200,
                                      "a" + ".b" * 100 + "=1", "network=1", "network.layers=7",
                                      "output.max_bytes=0", "output.max_bytes=1",
                                      "output.sample_dt=1e-300", "integrator.t_end=1e300",
                                      "network.seed=-1", "model.type=\"dtp\"", "λ=1",
                                      "input.value={ a = 1 }", "integrator.t_end=\"1\"",
                                      "integrator.t_end={ x = " * 80 + "1" + " }" * 80])]
    elif kind == 3:
        args[0] = rng.choice(["runn", "valid", "", "-h0", "infoo", "RUN"])
    elif kind == 4:
        args[1] = rng.choice(["missing.toml", ".", "/", "/dev/null", "data.csv", "λ.toml"])
    elif kind == 5:
        args = [rng.choice(["info", "watch"]), rng.choice(["missing.h5", "config.toml", ".",
                                                           "/dev/null"])]
        if args[0] == "watch":
            args.append("--once")
        if rng.random() < 0.3:
            args += [rng.choice(["--segments", "--interval"]), rng.choice(["-1", "abc", "0", "1e9"])]
    elif kind == 6:
        args = [rng.choice(["models", "integrators"]), rng.choice(["extra", "--x"])]
    elif kind == 7 and args[0] == "run":
        args += ["-o"]  # a missing value
    elif kind == 8 and args[0] == "run":
        args += ["-o", rng.choice(["config.toml", ".", "/", "/nonexistent/dir/x.h5", "sub/x.h5"])]
    elif kind == 9:
        args += ["--set", "integrator.t_end=1.0"] * rng.randint(2, 50)
    elif kind == 10:
        args.insert(1, rng.choice(["--quiet", "--progress", "--version", "--help"]))
    elif kind == 11:
        args = args[:rng.randrange(len(args) + 1)]
    elif kind == 12:
        args += ["--set", "integrator.t_end=" + "9" * rng.randint(20, 400)]
    else:
        args += ["--set", "output.record.\"x/" + rng.choice([".", "..", "a/b", ""]) + "\"=\"all\""]
    return args


# ---- running a case ------------------------------------------------------------------------

# A message names what is wrong: a dotted config key, a file, an option or a subcommand.
NAMES = re.compile(r"(\b(network|model|input|integrator|output|data|train)(\.|\[)[a-z_]|"
                   r"--[a-z]+|\.toml\b|\.csv\b|\.h5\b|\bsubcommand\b|: unknown key)")


def names_something(stderr, case):
    """Whether an error message names a key, an option, a subcommand or one of the files (a
    file named in the config or the command line, as the message's first word)."""
    if NAMES.search(stderr):
        return True
    first = re.match(r"learnflow: error: (.+?): ", stderr)
    if first is None:
        return False
    name = first.group(1).rsplit(":", 1)[0] if re.search(r":\d+$", first.group(1)) else first.group(1)
    return bool(name) and (name in case["config"] or name in case["args"] or name in case["files"])


def make_case(rng, seed_list, index):
    name, text, files = rng.choice(seed_list)
    files = dict(files)
    for _ in range(rng.choice([1, 1, 1, 1, 2, 2, 3])):
        if files and rng.random() < 0.25:
            f = rng.choice(sorted(files))
            files[f] = mutate_csv(rng, files[f])
        else:
            text = mutate_text(rng, text)
    # The parameter file: cut short, overwritten in places, or a parameter made NaN or inf.
    init = None
    if name == "init_from_file" and rng.random() < 0.3:
        init = rng.choice([("truncate", rng.random()), ("garble", rng.randrange(1 << 30)),
                           ("value", rng.choice(["W/layer1", "W/layer2", "b/layer1", "b/layer2"]),
                            rng.choice([float("nan"), float("inf"), -float("inf"), 1e308]))])
    mode = "run" if rng.random() < RUN_FRACTION else "validate"
    args = [mode, "config.toml"]
    if mode == "run":
        args += ["-o", "out/run.h5", "--quiet"] + RUN_GUARDS
    if rng.random() < ARGS_FRACTION:
        args = mutate_args(rng, args)
    return {"index": index, "seed": name, "config": text, "files": files, "args": args,
            "init": init}


def run_case(case, workdir, init_file):
    directory = Path(workdir) / f"case{case['index']}"
    directory.mkdir()
    (directory / "out").mkdir()
    (directory / "config.toml").write_text(case["config"], errors="surrogateescape")
    for name, text in case["files"].items():
        (directory / name).write_text(text, errors="surrogateescape")
    shutil.copy(init_file, directory / "init.h5")
    mutate_init(directory / "init.h5", case.get("init"))
    before = {p for p in directory.rglob("*")}
    start = time.monotonic()
    try:
        result = subprocess.run([str(BIN), *case["args"]], cwd=directory, capture_output=True,
                                timeout=TIMEOUT)
        status, stderr = result.returncode, result.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        status, stderr = "timeout", ""
    seconds = time.monotonic() - start
    problems = []
    if status == "timeout":
        problems.append(f"no exit within {TIMEOUT} s")
    elif status < 0:
        problems.append(f"killed by signal {signal.Signals(-status).name}")
    elif status not in (0, 2, 3):
        problems.append(f"exit status {status}")
    elif status == 2:
        new = sorted(str(p.relative_to(directory)) for p in set(directory.rglob("*")) - before)
        if new:
            problems.append(f"exit 2 left files: {new}")
        if not names_something(stderr, case):
            problems.append("exit 2 names no key, option or file")
        if "bad_alloc" in stderr or "std::" in stderr:
            problems.append("an internal exception reached the user")
    shutil.rmtree(directory, ignore_errors=True)
    return case, status, stderr, seconds, problems


def mutate_init(path, mutation):
    if mutation is None:
        return
    data = bytearray(path.read_bytes())
    if mutation[0] == "truncate":
        path.write_bytes(data[:int(len(data) * mutation[1])])
    elif mutation[0] == "garble":
        rng = random.Random(mutation[1])
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
    else:
        import h5py  # only here: the rest of the test needs no h5py
        with h5py.File(path, "r+") as f:
            values = f["parameters/" + mutation[1]][()]
            values.flat[0] = mutation[2]
            f["parameters/" + mutation[1]][...] = values


def describe(case, status, stderr, problems):
    files = "".join(f"--- {name} ---\n{text}\n" for name, text in case["files"].items())
    config = case["config"]
    if len(config) > 4000:
        config = config[:2000] + f"\n[... {len(config) - 4000} characters ...]\n" + config[-2000:]
    return (f"case {case['index']} (seed config '{case['seed']}'): {'; '.join(problems)}\n"
            f"command: learnflow {' '.join(repr(a) if len(a) < 300 else repr(a[:300]) + '...' for a in case['args'])}\n"
            f"init.h5 mutation: {case.get('init')}\n"
            f"status: {status}\nstderr: {stderr[-2000:]}\n--- config.toml ---\n{config}\n{files}")


class FuzzTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not BIN.is_file():
            raise unittest.SkipTest(f"no learnflow binary at {BIN} (set LEARNFLOW_BIN)")
        cls.tmp = tempfile.TemporaryDirectory(prefix="learnflow_fuzz_")
        # The file that init_from_file reads its parameters from: a real run file.
        (Path(cls.tmp.name) / "init.toml").write_text(INIT_SOURCE)
        cls.init_file = Path(cls.tmp.name) / "init.h5"
        result = subprocess.run([str(BIN), "run", "init.toml", "-o", "init.h5", "--quiet"],
                                cwd=cls.tmp.name, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_seeds_are_valid(self):
        """Every seed config validates unmutated (else the mutations test nothing)."""
        work = Path(self.tmp.name) / "seeds"
        work.mkdir()
        for name, text, files in seeds():
            case = {"index": name, "seed": name, "config": text, "files": files,
                    "args": ["validate", "config.toml"]}
            _, status, stderr, _, _ = run_case(case, work, self.init_file)
            self.assertEqual(status, 0, f"{name}: {stderr}")

    def test_fuzz(self):
        rng = random.Random(SEED)
        seed_list = seeds()
        cases = [make_case(rng, seed_list, i) for i in range(CASES)]
        work = Path(self.tmp.name) / "cases"
        work.mkdir()
        failures, statuses, slowest = [], {}, (0.0, None)
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=JOBS) as pool:
            for case, status, stderr, seconds, problems in pool.map(
                    lambda c: run_case(c, work, self.init_file), cases):
                statuses[status] = statuses.get(status, 0) + 1
                if seconds > slowest[0]:
                    slowest = (seconds, case["index"])
                if problems:
                    failures.append(describe(case, status, stderr, problems))
        wall = time.monotonic() - start
        modes = {}
        for c in cases:
            modes[c["args"][0] if c["args"] else ""] = modes.get(c["args"][0] if c["args"] else "", 0) + 1
        print(f"\nfuzz: {len(cases)} cases (seed {SEED}) in {wall:.1f} s with {JOBS} jobs; exit "
              f"statuses {dict(sorted(statuses.items(), key=str))}; commands {modes}; slowest "
              f"case {slowest[1]}: {slowest[0]:.2f} s", file=sys.stderr)
        if failures:
            self.fail(f"{len(failures)} of {len(cases)} cases failed:\n\n" + "\n\n".join(failures[:20]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
