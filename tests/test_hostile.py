"""Hostile inputs and conditions (issue 11): special files, writes that fail or are killed,
many threads at once, resource limits, and the Python errors a spec or a command line
could provoke. Each must end in an archdsl error that names the file or position, never a
hang, a lost file or a traceback."""
from __future__ import annotations

import os
import random
import resource
import signal
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from archdsl.cli import main
from archdsl.compiler import compile_spec
from archdsl.errors import ArchDSLError
from archdsl.fileio import ArchFileError, write_atomic
from conftest import ROOT

UNFORMATTED = "model  m{ input [3,8,8]\n relu}\n"
FORMATTED = "model m {\n  input [3, 8, 8]\n  relu\n}\n"


def run_cli(*args: str, preexec=None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archdsl", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=preexec)


def big_unformatted_spec() -> str:
    """About 1.4 MB (most of it comments, which count against no token limit), badly indented."""
    lines = ["model big {", "  input [3, 8, 8]"]
    lines += [f"      relu   # {'x' * 900} {i}" for i in range(1500)]
    return "\n".join(lines + ["}"]) + "\n"


# ---------------------------------------------------------------- reading: regular files only
@pytest.mark.quick
def test_special_files_are_refused_at_once(tmp_path):
    fifo = tmp_path / "pipe.arch"
    os.mkfifo(fifo)
    sparse = tmp_path / "sparse.arch"
    with open(sparse, "wb") as f:
        f.truncate(8 * 1024**3)  # 8 GB of holes: no disk used, and never read
    cases = {str(fifo): "is a FIFO (named pipe), not a regular file", "/dev/zero": "character device",
             str(sparse): "8,589,934,592 bytes; the limit is", str(tmp_path): "is a folder, not a spec file"}
    for path, message in cases.items():
        start = time.perf_counter()
        with pytest.raises(ArchDSLError, match=message.replace("(", r"\(").replace(")", r"\)")):
            compile_spec(path)
        assert time.perf_counter() - start < 1.0, path
    r = run_cli("check", str(fifo), "/dev/zero", str(sparse), timeout=30)  # the CLI too: no hang
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stderr.count("error:") == 3, r.stderr
    assert "3 of 3 specs have errors" in r.stderr


def test_fmt_refuses_special_files_and_goes_on(tmp_path):
    fifo = tmp_path / "pipe.arch"
    os.mkfifo(fifo)
    spec = tmp_path / "m.arch"
    spec.write_text(UNFORMATTED)
    assert main(["fmt", str(fifo), "/dev/zero", str(spec)]) == 1
    assert spec.read_text() == FORMATTED


# ---------------------------------------------------------------- writing: all or nothing
def test_write_atomic_replaces_whole_and_keeps_permissions(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o640)
    write_atomic(target, "new text")
    assert target.read_text() == "new text" and (target.stat().st_mode & 0o777) == 0o640
    write_atomic(tmp_path / "fresh.bin", b"\x00\x01")
    assert (tmp_path / "fresh.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.bin", "out.txt"]  # no temp files left


def test_write_atomic_failure_names_the_file_and_leaves_it(tmp_path):
    with pytest.raises(ArchFileError, match="cannot write .*nowhere/x.txt: No such file") as info:
        write_atomic(tmp_path / "nowhere" / "x.txt", "data")
    assert "create it first" in info.value.hint


def _kill_fmt(spec: Path, delay: float | None) -> None:
    """Run `archdsl fmt spec` and SIGKILL it after `delay` seconds, or (delay None) the moment
    the file starts to change on disk (size, inode or mtime): the worst moment for a write."""
    before = spec.stat()
    proc = subprocess.Popen([sys.executable, "-m", "archdsl", "fmt", str(spec)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if delay is not None:
        time.sleep(delay)
    else:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            now = spec.stat()
            if (now.st_size, now.st_ino, now.st_mtime_ns) != (before.st_size, before.st_ino, before.st_mtime_ns):
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_fmt_killed_at_random_moments_leaves_a_whole_file(tmp_path):
    """kill -9 during `archdsl fmt` of a 1.4 MB spec, at random moments and the moment the file
    starts changing: it is always the original or the formatted text, whole (an in-place
    write leaves it empty or truncated)."""
    original = big_unformatted_spec()
    spec = tmp_path / "big.arch"
    spec.write_text(original)
    start = time.perf_counter()
    assert run_cli("fmt", str(spec)).returncode == 0
    duration = time.perf_counter() - start
    formatted = spec.read_text()
    assert formatted != original and len(formatted) > 1_000_000
    rng = random.Random(11)
    for i in range(6):
        spec.write_text(original)
        _kill_fmt(spec, rng.uniform(0.3, 1.0) * duration if i % 2 else None)  # writing comes last
        text = spec.read_text()
        assert text in (original, formatted), f"run {i}: a torn file of {len(text):,} characters"


def test_fmt_under_a_file_size_limit_keeps_the_original_and_formats_the_others(tmp_path):
    """RLIMIT_FSIZE stands in for a full disk: the big spec cannot be written; it stays as it
    was, and the small one next to it is still formatted."""
    original = big_unformatted_spec()
    big, small = tmp_path / "big.arch", tmp_path / "small.arch"
    big.write_text(original)
    small.write_text(UNFORMATTED)

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))

    r = run_cli("fmt", str(big), str(small), preexec=limit)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"cannot write {big}: File too large" in r.stderr and "ulimit -f" in r.stderr
    assert big.read_text() == original and small.read_text() == FORMATTED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.arch", "small.arch"]


# ---------------------------------------------------------------- threads
THREAD_SPECS = [
    ("text", "model a {\n  input [3, 16, 16]\n  conv(8, k=3) -> bn -> relu\n}\n"),
    ("text", "model b {\n  input [3, 16, 16]\n  conv(8, k=3) -> relu\n  conv(0, k=1)\n}\n"),  # error, line 4
    ("text", "n = m + 1\nm = n\nmodel c {\n  input [3, 8, 8]\n  conv(n, k=1)\n}\n"),  # a real cycle
    ("text", "model d {\n  input [3, 8, 8]\n  conv(4 k=1)\n}\n"),  # syntax error
    ("text", "block block2(w) {\n  conv(w, k=1)\n}\nmodel e {\n  input [3, 8, 8]\n  block2(4) x 3\n}\n"),
    ("text", "c = 4\nmodel f {\n  input [3, 8, 8]\n  for i in range(2000) {\n    n = c * i + c\n  }\n  conv(c, k=1)\n}\n"),
    ("path", "specs/resnet18.arch"),
    ("path", "specs/mobilenet_v2.arch"),
    ("path", "examples/broken_residual.arch"),
]


def _compile(kind: str, spec: str):
    try:
        return compile_spec(text=spec) if kind == "text" else compile_spec(ROOT / spec)
    except ArchDSLError as e:
        return e


def _render(result) -> str:
    """An outcome as text: the rendered error (quoted lines included), or the checked IR."""
    if isinstance(result, ArchDSLError):
        return "error: " + result.render()
    from archdsl.ir.printer import dump

    return f"ok {result.params} {result.output_shape}\n" + dump(result.graph)


@pytest.mark.quick
def test_threads_compile_like_one_thread():
    """8 threads compile valid and broken specs (inline ones all named <spec>) at once, with a
    thread switch every few microseconds; errors are rendered after all compilations are done
    (so a quote from a shared source registry would show another spec's line). Every result
    and rendered error equals the serial one."""
    serial = [_render(_compile(k, s)) for k, s in THREAD_SPECS]
    assert sum(o.startswith("error") for o in serial) == 4 and serial[7].startswith("ok 3504872")
    # every spec 4 times, and the two that resolve global names thousands of times 8 times more
    jobs = [i for i in range(len(THREAD_SPECS)) for _ in range(4)] + [5, 7] * 8
    random.Random(5).shuffle(jobs)
    results: dict[int, list] = {i: [] for i in range(len(THREAD_SPECS))}
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(mine):
        barrier.wait()
        for i in mine:
            out = _compile(*THREAD_SPECS[i])
            with lock:
                results[i].append(out)

    threads = [threading.Thread(target=worker, args=(jobs[t::8],)) for t in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        sys.setswitchinterval(interval)
    for i, outs in results.items():
        rendered = [_render(o) for o in outs]
        assert len(rendered) == jobs.count(i) and all(o == serial[i] for o in rendered), \
            f"spec {i}: {[o[-600:] for o in rendered if o != serial[i]]}"


def test_an_error_quotes_its_own_text_after_another_spec_is_compiled():
    first = _compile("text", "model a {\n  input [3, 8, 8]\n  conv(0, k=1)\n}\n")
    _compile("text", "model b {\n  input [3, 8, 8]\n  relu -> gelu\n  conv(0, k=1)\n}\n")
    assert "    3 |   conv(0, k=1)" in first.render()


# ---------------------------------------------------------------- limits in bytes, before allocation
HUGE_LINEAR = "model m {\n  input [50000]\n  linear(100000)\n}\n"  # 5e9 parameters: 20 GB in fp32


def test_5e9_parameter_linear_is_refused_before_allocation():
    """`archdsl.build` of a four-line spec with a 20 GB linear: refused by the static limit, in
    a process whose peak memory (torch imported) stays under 500 MB."""
    # the peak of this process's own memory (VmHWM): ru_maxrss would also count the forking
    # parent's resident set, which Linux folds in at exec (a big pytest process reads as 3 GB)
    code = ("import archdsl\n"
            "try:\n    archdsl.build(text=SPEC)\nexcept archdsl.ArchDSLError as e:\n    print(e.render())\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
            "print('peak_kb', hwm)\n").replace("SPEC", repr(HUGE_LINEAR))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "<spec>:3:3: error: the model's parameters take more than 8 GiB" in r.stdout
    peak_mb = int(r.stdout.split("peak_kb")[1]) / 1024
    assert peak_mb < 500, f"peak RSS {peak_mb:.0f} MB"


def test_limits_are_bytes_and_can_be_raised(tmp_path):
    from archdsl.limits import Limits, parse_size

    spec = tmp_path / "huge.arch"
    spec.write_text(HUGE_LINEAR)
    assert main(["check", "-q", str(spec)]) == 1
    assert main(["check", "-q", str(spec), "--limit", "params=24GiB"]) == 0  # raised: checks (nothing allocated)
    assert compile_spec(spec, limits=Limits(max_param_bytes=24 * 2**30)).params == 5_000_100_000
    big_input = "model m {\n  input [3, 20000, 20000]\n  relu\n}\n"  # the input alone: 4.5 GiB
    with pytest.raises(ArchDSLError, match=r"the input \[3, 20000, 20000\] takes 4.47 GiB .* limit of 4 GiB") as info:
        compile_spec(text=big_input)
    assert (info.value.span.line, info.value.span.col) == (2, 9)
    assert compile_spec(text=big_input, limits=Limits(max_activation_bytes=5 * 2**30)).output_shape == [3, 20000, 20000]
    assert parse_size("16GiB") == 16 * 2**30 and parse_size("500MB") == 500_000_000 and parse_size("2e9") == 2 * 10**9
    with pytest.raises(SystemExit):
        main(["check", str(spec), "--limit", "params=plenty"])  # a wrong command line: exit 2


# ---------------------------------------------------------------- Python errors a spec can cause
def test_module_attribute_list_covers_torch():
    """The front end refuses layer names that the emitted module already has; it cannot import
    torch, so it carries the names as a literal: this keeps the literal complete."""
    import torch

    from archdsl.elaborate.builder import MODULE_ATTRIBUTES
    from archdsl.emit.torch_module import ArchModule, Scope

    public = {n for cls in (torch.nn.Module, ArchModule, Scope) for n in dir(cls) if not n.startswith("_")}
    public |= {n for n in vars(ArchModule()) if not n.startswith("_")}
    assert public - MODULE_ATTRIBUTES == set(), "add these to MODULE_ATTRIBUTES in archdsl/elaborate/builder.py"


@pytest.mark.parametrize("name, message", [("register_forward_hook", "the emitted torch module uses that name"),
                                           ("state_dict", "the emitted torch module uses that name"),
                                           ("lambda", "it is a Python keyword"), ("class", "it is a Python keyword")])
def test_layer_names_that_collide_are_refused_at_check_time(name, message):
    text = f"model m {{\n  input [3, 8, 8]\n  conv(4, k=1) as {name}\n}}\n"
    with pytest.raises(ArchDSLError, match=message) as info:
        compile_spec(text=text)
    assert (info.value.span.line, info.value.span.col) == (3, 3)


def test_python_overrides_must_be_spec_values():
    for value in (float("nan"), float("inf"), 1e308, 10**400, [1, float("nan"), 1, 1]):
        with pytest.raises(ArchDSLError, match="numbers stay finite and below 10"):
            compile_spec("specs/resnet18.arch", overrides={"classes" if not isinstance(value, list) else "depths": value})
    with pytest.raises(ArchDSLError, match="a Python object, not a spec value"):
        compile_spec("specs/resnet18.arch", overrides={"classes": object()})


def test_import_paths_and_chains_are_spec_errors(tmp_path):
    (tmp_path / "long.arch").write_text('import "' + "a" * 5000 + '.arch"\nmodel m {\n  input [3, 8, 8]\n  relu\n}\n')
    with pytest.raises(ArchDSLError, match="cannot import 'aaa.* File name too long") as info:
        compile_spec(tmp_path / "long.arch")
    assert (info.value.span.line, info.value.span.col) == (1, 1)
    for i in range(1000):  # a chain of 1000 imports: refused at a depth, no RecursionError
        (tmp_path / f"f{i}.arch").write_text(f'import "f{i + 1}.arch"\n' if i < 999 else "c = 1\n")
    (tmp_path / "root.arch").write_text('import "f0.arch"\nmodel m {\n  input [3, 8, 8]\n  relu\n}\n')
    with pytest.raises(ArchDSLError, match="imports nest more than 64 deep") as info:
        compile_spec(tmp_path / "root.arch")
    assert info.value.span.file.endswith("f63.arch") and info.value.trace[0].file.endswith("root.arch")


@pytest.mark.parametrize("command", [["check", "specs/resnet18.arch"], ["summary", "specs/resnet18.arch"]])
def test_output_to_a_full_device_is_an_error_not_a_crash(command):
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "archdsl", *command], cwd=ROOT, stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("error: cannot write the output: No space left on device\nhint: the disk is full")
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr


# ---------------------------------------------------------------- the grammar cache
def test_grammar_cache_is_written_reused_and_never_required(tmp_path):
    """The parse tables come from a per-user cache file; a torn or foreign file, or a cache
    folder that cannot be created, costs only the rebuild, never an error."""
    def check(cache_dir: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "archdsl", "check", "-q", "specs/resnet18.arch"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, env={**os.environ, "ARCHDSL_CACHE_DIR": cache_dir})

    folder = tmp_path / "cache"
    assert check(str(folder)).returncode == 0
    files = [f for f in folder.iterdir() if f.is_file()]
    assert len(files) == 1 and files[0].name.startswith("grammar-") and files[0].stat().st_size > 10_000
    files[0].write_bytes(files[0].read_bytes()[:5000])  # torn, as by a crash of another writer
    shutil.rmtree(folder / "ast")  # parsed files come from their own cache: make the parser run
    r = check(str(folder))
    assert r.returncode == 0 and r.stderr == ""
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    r = check(str(blocked / "cache"))  # mkdir fails: no cache, same result
    assert r.returncode == 0 and r.stderr == ""
    assert check("").returncode == 0  # turned off


def test_parsed_files_are_cached_and_an_edit_or_a_torn_entry_parses_again(tmp_path):
    """The ASTs of parsed files come from the cache in the next process (lark is not even
    imported); an edited file is parsed again, errors are never cached, and a torn entry
    is parsed again and replaced."""
    spec = tmp_path / "net.arch"
    spec.write_text("model net {\n  input [3, 8, 8]\n  conv(4, k=3) -> relu\n}\n")
    probe = ("import sys; from archdsl.cli import main; rc = main(['check', '-q', sys.argv[1]]); "
             "print('lark' in sys.modules); sys.exit(rc)")

    def check() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", probe, str(spec)], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, env={**os.environ, "ARCHDSL_CACHE_DIR": str(tmp_path / "cache")})

    first = check()
    assert first.returncode == 0 and first.stdout.split()[-1] == "True", first.stderr  # parsed
    entries = list((tmp_path / "cache" / "ast").iterdir())
    assert len(entries) == 1
    again = check()
    assert again.returncode == 0 and again.stdout.split()[-1] == "False", again.stderr  # from the cache
    spec.write_text("model net {\n  input [3, 8, 8]\n  conv(4, k=3) -> relux\n}\n")  # edited: a typo
    r = check()
    assert r.returncode == 1 and "net.arch:3:19: error: unknown block or op 'relux'" in r.stderr
    assert "hint: did you mean 'relu'" in r.stderr
    spec.write_text("model net {\n  input [3, 8, 8]\n  conv(4, k=3) -> \n}\n")  # a syntax error: never cached
    assert check().returncode == 1 and check().returncode == 1
    assert len(list((tmp_path / "cache" / "ast").iterdir())) == 2  # the two that parsed
    spec.write_text("model net {\n  input [3, 8, 8]\n  conv(4, k=3) -> relu\n}\n")
    entries[0].write_bytes(entries[0].read_bytes()[:40])  # torn by something else
    r = check()
    assert r.returncode == 0 and r.stdout.split()[-1] == "True" and r.stderr == ""
    assert check().stdout.split()[-1] == "False"  # rewritten whole
