"""Batch generation at scale: job lists, torch.distributed sharding, resume, manifest, .npz packing.

Every image is defined by its global index i alone: its condition (class or prompt), its seed
(`seed + i` unless the job gives one) and its settings. With the per-image RNG the pixels therefore do
not depend on the number of processes, the batch size, or restarts. Rank r of W takes the indices
i with i % W == r (so classes are spread evenly); images are written atomically as `{i:06d}.png`
with their full settings, and a re-run skips every image that exists and decodes.

Launch: `ssgen batch ...` (one process) or `torchrun --nproc_per_node N -m ssgen batch ...`
(nccl on GPUs, gloo on the CPU); from Python, `ssgen.batch.run(model, jobs, out_dir, ...)`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml
from rich.console import Console

from .backends import families, family
from .checks import MAX_SEED, as_int, as_str
from .compile import compile_mode
from .config import ModelConfig, load_config
from .errors import ConfigError, OptionError, SSGenError
from .request import resolve
from .settings import SSG, check_seed_span, ssg_from_config
from .sinks import image_path
from .terminal import safe
from .textfile import read_text

RUN_FILE = "run.json"
MANIFEST = "manifest.jsonl"


def preset(name: str, config: ModelConfig) -> dict[str, Any]:
    """A batch preset (`FamilySpec.presets`) for this model's family: {"classes" or "prompts", per_class, options}."""
    owners = [s for s in families().values() if name in s.presets]
    if not owners:
        known = [p for s in families().values() for p in s.presets]
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(known)}")
    if family(config.family) not in owners:
        raise ConfigError(f"preset {name} is for {' or '.join(s.title for s in owners)} models; {config.name} is "
                          f"{config.family}")
    return family(config.family).presets[name]
err = Console(stderr=True, emoji=False)  # progress bars and notes; stdout is left to the caller


@dataclass
class Job:
    """One image: its global index, condition, seed and option overrides."""

    index: int
    seed: int
    cls: int | None = None
    prompt: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # where it was read ("jobs.jsonl:3"), for error messages

    def condition(self) -> dict[str, Any]:
        return {"class": self.cls} if self.cls is not None else {"prompt": self.prompt}


# ----------------------------------------------------------------------------------------------
# job lists
# ----------------------------------------------------------------------------------------------


def parse_class_ranges(text: str) -> list[int]:
    """`0-999`, `1,5,9`, `0-9,100-109` -> list of ints."""
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", part)
        if not m:
            raise ConfigError(f"malformed --classes {text!r}; use e.g. 0-999 or 1,5,9 or 0-9,100-109")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if a > b:
            raise ConfigError(f"malformed --classes {text!r}: {a}-{b} has start > end")
        out.extend(range(a, b + 1))
    return out


def job_fields(config: ModelConfig | None = None) -> tuple[str, ...]:
    """The per-job overrides a job file may give: the family's `job_fields` and `ssg` (every registered family's
    without a config)."""
    specs = [family(config.family)] if config is not None else list(families().values())
    return tuple(dict.fromkeys(f for spec in specs for f in spec.job_fields)) + ("ssg",)


def _job_from_record(rec: Any, index: int, base_seed: int, where: str, fields: tuple[str, ...]) -> Job:
    """One job of a file, its class, prompt and seed of the right type (no coercion: `class: 2.0` and `seed: "7"`
    are errors naming the job and the field). An absent or empty field is not given."""
    if not isinstance(rec, dict):
        raise ConfigError(f"{where}: a job must be a mapping with `class` or `prompt`, got {rec!r}")
    rec = {k: v for k, v in rec.items() if v is not None and v != ""}
    cls, prompt = rec.pop("class", None), rec.pop("prompt", None)
    seed = rec.pop("seed", None)
    if (cls is None) == (prompt is None):
        raise ConfigError(f"{where}: give exactly one of `class` or `prompt`")
    unknown = set(rec) - set(fields)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; allowed: class, prompt, seed, "
                          + ", ".join(fields))
    try:  # the class's range is the model's: `validate_jobs` judges it
        cls = as_int(cls, "class", 0) if cls is not None else None
        prompt = as_str(prompt, "prompt") if prompt is not None else None
        seed = as_int(seed, "seed", 0, MAX_SEED, " (what torch's generators take)") if seed is not None else None
    except OptionError as e:
        raise e.at(where) from None
    if seed is None:  # seed + index: past 2**64-1 is the base seed's error (the run's, not this job's)
        seed = check_seed_span(base_seed, index + 1) + index
    return Job(index=index, seed=seed, cls=cls, prompt=prompt, overrides=rec, source=where)


_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?(nan|inf|infinity)", re.IGNORECASE)
_LIST = re.compile(r"[^,]+(,[^,]+)+")


def parse_cell(text: str, kind: str = "value") -> Any:
    """A CSV cell (text by nature) -> the value it writes, strictly. `kind` "text" (a prompt, a negative prompt,
    a size) keeps it as written; "value" reads true/false, a whole number (digits only: `017` is 17), a decimal
    number (`0.5`, `1e3`), numbers separated by commas (a per-scale option), a {...} or [...] in JSON/YAML flow
    style (an ssg mapping, a list), else the text itself, which the checks then refuse where a number is due.
    YAML's own reading of a bare cell is not used: it takes `1:30` for 90, `017` for 15 and `yes` for true."""
    s = text.strip()
    if kind == "text":
        return s
    if _INT.fullmatch(s):
        return int(s)
    if _FLOAT.fullmatch(s):
        return float(s)
    if s.lower() in ("true", "false"):
        return s.lower() == "true"
    if s[:1] in ("{", "["):
        try:
            return yaml.safe_load(s)
        except yaml.YAMLError:
            raise ConfigError(f"malformed cell {s!r}; write a mapping or list as JSON") from None
    if _LIST.fullmatch(s):
        parts = [parse_cell(v) for v in s.split(",")]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in parts):
            return parts
    return s


def _cells(rec: dict[str, str], texts: set[str]) -> dict[str, Any]:
    """A CSV row's cells -> a job record (`parse_cell`; a prompt as written; an empty cell is not given)."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if k is None:
            raise ConfigError("a CSV row has more cells than the header")
        v = v or ""
        out[k] = v if k == "prompt" or not v.strip() else parse_cell(v, "text" if k in texts else "value")
    return out


def text_fields(config: ModelConfig | None = None) -> set[str]:
    """The job fields whose CSV cells stay text: `prompt` and the families' text flags (negative_prompt, size,
    ...): a negative prompt "42" is text, not a number."""
    specs = [family(config.family)] if config is not None else list(families().values())
    return {"prompt"} | {f.name for spec in specs for f in spec.flags if f.kind == "text"}


def read_jobs(path: str | Path, base_seed: int = 0, config: ModelConfig | None = None) -> list[Job]:
    """Jobs from a YAML list, JSON Lines or CSV file (by extension); one job = one image. `config`: the run's
    model, whose family says which per-job overrides a job may give."""
    fields = job_fields(config)
    p = Path(path)
    text = read_text(p, "job file", "give a YAML list, JSON Lines or CSV job file (one job per image)")
    jobs: list[Job] = []
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                raise ConfigError(f"{p}:{n}: malformed JSON ({e.msg})") from None
            jobs.append(_job_from_record(rec, len(jobs), base_seed, f"{p}:{n}", fields))
    elif suffix == ".csv":
        texts = text_fields(config)
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise ConfigError(f"{p} is empty: add a header line (class or prompt, seed, ...) and one job per line")
        for n, row in enumerate(reader, 2):
            try:
                rec = _cells(row, texts)
            except ConfigError as e:
                raise ConfigError(f"{p}:{n}: {e}") from None
            jobs.append(_job_from_record(rec, len(jobs), base_seed, f"{p}:{n}", fields))
    elif suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            line = getattr(getattr(e, "problem_mark", None), "line", None)
            raise ConfigError(f"{p}:{(line or 0) + 1}: malformed YAML") from None
        if data is None:
            data = []
        if not isinstance(data, list):
            raise ConfigError(f"{p}: a YAML job file is a list of jobs (- class: 207 / - prompt: ...)")
        for n, rec in enumerate(data, 1):
            jobs.append(_job_from_record(rec, len(jobs), base_seed, f"{p} job {n}", fields))
    else:
        raise ConfigError(f"job file {p} must end in .yaml, .jsonl or .csv")
    if not jobs:
        raise ConfigError(f"job file {p} has no jobs")
    return jobs


def jobs_from_flags(classes: str | None, per_class: int, prompts_file: str | None, per_prompt: int,
                    base_seed: int) -> list[Job]:
    """`--classes 0-999 --per-class 50` or `--prompts-file F --per-prompt N`: index i -> condition i // n."""
    if classes and prompts_file:
        raise ConfigError("give either --classes or --prompts-file, not both")
    if classes:
        per_class = as_int(per_class, "per_class", 1)
        cl = parse_class_ranges(classes)
        base = check_seed_span(base_seed, len(cl) * per_class)
        return [Job(index=i, seed=base + i, cls=cl[i // per_class]) for i in range(len(cl) * per_class)]
    if prompts_file:
        per_prompt = as_int(per_prompt, "per_prompt", 1)
        text = read_text(prompts_file, "prompts file", "give a text file with one prompt per line")
        lines = [ln.strip() for ln in text.splitlines()]
        ps = [ln for ln in lines if ln]
        if not ps:
            raise ConfigError(f"prompts file {prompts_file} has no prompts (one per line)")
        base = check_seed_span(base_seed, len(ps) * per_prompt)
        return [Job(index=i, seed=base + i, prompt=ps[i // per_prompt]) for i in range(len(ps) * per_prompt)]
    raise ConfigError("nothing to generate: give --jobs FILE, --classes RANGE or --prompts-file FILE (or --preset)")


def jobs_of(config: ModelConfig, jobs_file: str | Path | None, classes: str | None, per_class: int,
            prompts_file: str | Path | None, per_prompt: int, base_seed: int) -> list[Job]:
    """The jobs of a command line: a job file, or `--classes`/`--prompts-file` (`ssgen batch`, `ssgen sweep`)."""
    if jobs_file is not None:
        if classes or prompts_file:
            raise ConfigError("give either --jobs or --classes/--prompts-file, not both")
        return read_jobs(jobs_file, base_seed, config)
    return jobs_from_flags(classes, per_class, str(prompts_file) if prompts_file else None, per_prompt, base_seed)


def job_ssg(job: Job) -> SSG | bool | None:
    """A job's `ssg:` override: None (none: the run's setting), True (the model's default), False (off), an
    SSG, or a mapping read exactly like a model config's `ssg:` section (`enabled: false` = off)."""
    value = job.overrides.get("ssg")
    if value is None or isinstance(value, (bool, SSG)):
        return value
    return ssg_from_config(value) or False


def validate_jobs(jobs: list[Job], config: ModelConfig, options: dict[str, Any] | None = None,
                  ssg: SSG | bool | None = None) -> None:
    """Check every job (condition, seed, the run's options with the job's overrides, its `ssg:`) against the
    model config before anything is written or loaded; an error names the job. (Each call of the run resolves
    its group of jobs once more: a job is judged alone here so that an error can name it.)"""
    fields = job_fields(config)
    for j in jobs:
        where = j.source or f"job {j.index}"
        try:
            unknown = set(j.overrides) - set(fields)
            if unknown:
                raise ConfigError(f"unknown field(s) {', '.join(sorted(unknown))}; allowed: class, prompt, seed, "
                                  + ", ".join(fields))
            group_request([j], config, options or {}, ssg)
        except OptionError as e:
            if e.where or (e.field in (options or {}) and e.field not in j.overrides):
                raise  # the run's option (an argument, a flag) or the config's `defaults:`, not the job's
            raise e.at(where) from None
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None


def group_request(group: list[Job], config: ModelConfig, options: dict[str, Any], ssg: SSG | bool | None):
    """One call's request: jobs with the same overrides (`groups`), the run's options under theirs."""
    own = job_ssg(group[0])
    opts = {k: v for k, v in {**options, **group[0].overrides}.items() if k != "ssg"}
    conds = {"classes": [j.cls for j in group]} if group[0].cls is not None else {"prompts": [j.prompt for j in group]}
    return resolve(config, **conds, options=opts, ssg=(ssg or False) if own is None else own,
                   seeds=[j.seed for j in group])


# ----------------------------------------------------------------------------------------------
# the output folder
# ----------------------------------------------------------------------------------------------


def weight_identity(config: ModelConfig) -> dict[str, Any]:
    """What identifies every weight file of a config without reading it: a Hub file by repo, file or folder,
    revision and sha256; a local file or folder by its resolved path, size and modification time (a file
    replaced in place changes them)."""
    out: dict[str, Any] = {}
    for role, spec in sorted(config.weights.items()):
        if spec.path is None:
            out[role] = {"repo": spec.repo, "file": spec.file, "folder": spec.folder, "revision": spec.revision,
                         "sha256": spec.sha256}
            continue
        p = (config.base_dir / spec.path).expanduser().resolve()
        files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else []
        stats = []
        for q in files:
            st = q.stat()
            stats.append([str(q.relative_to(p)) if q != p else q.name, st.st_size, st.st_mtime_ns])
        out[role] = {"path": str(p), "files": stats}
    return out


def run_record(config: ModelConfig, options: dict[str, Any], ssg: Any, jobs: list[Job]) -> dict[str, Any]:
    """What defines a run's images: if it differs from an existing folder's, resuming would mix runs. The options
    as they apply (the config's `defaults:` under the run's options), the architecture, the SSG setting, the jobs
    and the identity of every weight file (`weight_identity`)."""
    h = hashlib.sha256()
    for j in jobs:
        h.update(json.dumps([j.index, j.seed, j.cls, j.prompt, j.overrides], sort_keys=True, default=str).encode())
    return {"model": config.name, "family": config.family, "revision": config.revision(),
            "options": {**config.defaults, **options}, "model_section": dict(config.model),
            "ssg": ssg.to_dict() if ssg else None, "count": len(jobs), "jobs_sha256": h.hexdigest(),
            "weights": weight_identity(config)}


NOTES_SHOWN = 5  # pack_npz: notes about converted images shown before a count of the rest
IMAGE_NAME = re.compile(r"\d{6,}\.png")  # what a batch run writes: image_path(out, i)
STALE_TMP_S = 3600.0  # a temporary file older than this is abandoned, whoever made it


def batch_images(out: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """The NNNNNN.png files in `out`: those a batch run wrote (they carry ssgen's settings), those that do not
    decode (a killed copy, a damaged file), and the others (images without ssgen's settings: a user's
    000123.png). Other names (2024-holiday.png, 9lives.png) are never a run's."""
    from PIL import Image

    ours, damaged, foreign = [], [], []
    for p in sorted(out.iterdir()) if out.is_dir() else []:
        if not (IMAGE_NAME.fullmatch(p.name) and p.is_file()):
            continue
        try:
            with Image.open(p) as im:
                im.load()
                (ours if "ssgen" in getattr(im, "text", {}) else foreign).append(p)
        except Exception:  # PIL's ways of saying "damaged"
            damaged.append(p)
    return ours, damaged, foreign


def stale_temporary(p: Path, now: float) -> bool:
    """A `.NAME.PID.HEX.tmp` (ssgen.atomic) no live process on this machine owns, or one older than an hour
    (a run on another node of a shared folder writes an image in well under a second)."""
    try:
        age = now - p.stat().st_mtime
    except OSError:
        return False
    if age > STALE_TMP_S:
        return True
    parts = p.name.split(".")
    pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
    if pid is None or age < 60:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def check_run_folder(out: Path, record: dict[str, Any], overwrite: bool) -> None:
    """Create `out` or check that it holds this same run (else an error naming what differs). A folder
    without images is never another run: a run that failed before its first image does not block its
    corrected retry."""
    from .output import writable_folder

    writable_folder(out, "--out")
    f = out / RUN_FILE
    images, damaged, foreign = batch_images(out)
    if not f.exists():
        foreign += damaged  # without a run of ours here, a damaged NNNNNN.png is not ours to replace
    if foreign:  # a run would write over them: never, --overwrite or not
        raise SSGenError(f"{out} already holds images that ssgen batch did not write ({foreign[0].name}"
                         f"{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''}); use another --out")
    if f.exists():
        try:
            old = json.loads(read_text(f, "run record", "", SSGenError))
        except (SSGenError, ValueError):
            old = None
        if old != record and images and not overwrite:
            what = (f"different {', '.join(k for k in record if old.get(k) != record[k])}" if isinstance(old, dict)
                    else f"its {RUN_FILE} is damaged")
            raise SSGenError(f"{out} holds the images of another run ({what}); "
                             "use another --out, or --overwrite to replace them")
        if old != record:  # --overwrite replaces what a batch run wrote there, nothing else
            for p in images + damaged:
                p.unlink()
            (out / MANIFEST).unlink(missing_ok=True)
    elif images and not overwrite:
        raise SSGenError(f"{out} already holds images that ssgen batch did not write; use another --out")
    now = time.time()
    for stale in out.glob(".*.tmp"):  # left by a killed run; a live run's own temporary files are kept
        if stale_temporary(stale, now):
            stale.unlink(missing_ok=True)
    write_atomic(f, json.dumps(record, indent=1, sort_keys=True).encode())


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` atomically with ordinary permissions (`ssgen.atomic.write_atomic`, the one helper)."""
    from .atomic import write_atomic as write

    write(path, data)


def is_complete(path: Path, job: Job | None = None) -> bool:
    """The PNG exists, decodes and carries ssgen's settings (writes are atomic; this catches damage), and, given
    its job, says it is that job's image (its index and seed): a PNG copied in under another index is not."""
    from PIL import Image

    from .output import settings_problem

    if not path.is_file():
        return False
    try:
        with Image.open(path) as im:
            im.load()
            text = getattr(im, "text", {})
            if "ssgen" not in text or settings_problem(text["ssgen"]):
                return False
            meta = json.loads(text["ssgen"])
    except Exception:
        return False
    return job is None or (meta.get("index") == job.index and meta.get("seed") == job.seed)


def write_manifest(out: Path, count: int) -> int:
    """Rebuild manifest.jsonl from the images' own metadata, in index order; returns lines written."""
    from .output import read_metadata

    lines = []
    for i in range(count):
        p = image_path(out, i)
        if p.is_file():
            meta = read_metadata(p)
            lines.append(json.dumps({"index": i, "file": p.name, **meta}, sort_keys=True))
    write_atomic(out / MANIFEST, ("\n".join(lines) + "\n").encode() if lines else b"")
    return len(lines)


# ----------------------------------------------------------------------------------------------
# running
# ----------------------------------------------------------------------------------------------


def dist_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment (0, 1, 0 without it)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def groups(jobs: list[Job], batch_size: int) -> Iterator[list[Job]]:
    """Consecutive jobs with the same overrides, at most batch_size at a time."""
    cur: list[Job] = []
    for j in jobs:
        if cur and (len(cur) == batch_size or cur[-1].overrides != j.overrides):
            yield cur
            cur = []
        cur.append(j)
    if cur:
        yield cur


@dataclass
class RunReport:
    """What `run` did, as seen by one process."""

    rank: int
    world: int
    total: int  # images in the run
    present: int  # complete images in the folder at the end (counted by rank 0; -1 on the other ranks)
    mine: int  # this process's share of the images
    skipped: int  # of those, complete already (a resumed run)
    generated: int  # images this process generated
    seconds: float  # from the start of generation to the end of all processes' generation
    pipeline: Any = None  # the loaded Pipeline, with keep_pipeline=True (a sweep reuses it for every cell)


def run(model: Any, jobs: list[Job], out_dir: str | Path, *, options: dict[str, Any] | None = None,
        ssg: SSG | bool | None = None, batch_size: int = 4, device: str = "auto", dtype: str = "auto",
        offline: bool | None = None, overwrite: bool = False, compile: bool | str = False,
        keep_pipeline: bool = False, checked: bool = False) -> RunReport:
    """Generate the images of `jobs` into `out_dir`, skipping complete ones; sharded under torchrun.

    model: a model name, YAML path or ModelConfig, loaded here only after the run folder is checked (a
        wrong folder fails before any weights load), on cuda:LOCAL_RANK under torchrun on GPUs, with
        download bars on rank 0 alone; or an already loaded Pipeline (then device/dtype/offline are unused).
    options: generate options for every image (cfg, top_k, ...); a job's own overrides win.
    ssg: None (the model's default), False (off) or an SSG; a job's `ssg:` wins.
    compile: `ssgen.load`'s opt-in torch.compile of the per-scale step (False, True / "default", "cuda-graphs").
    keep_pipeline: return the loaded Pipeline in the report (to run more folders without loading again).
    checked: the caller already ran `validate_jobs` with these options and ssg (a sweep checks every cell first).
    Under torchrun (RANK and WORLD_SIZE set) process r takes jobs r, r+W, ... and this call sets up and
    tears down the process group (nccl on GPUs, gloo otherwise). Rank 0 writes manifest.jsonl at the end
    and raises an SSGenError when images are missing.
    """
    loaded = not isinstance(model, (str, Path, ModelConfig))  # a Pipeline: no torch import before the checks
    config = model.config if loaded else (model if isinstance(model, ModelConfig) else load_config(model))
    out_dir, options = Path(out_dir), dict(options or {})
    batch_size = as_int(batch_size, "batch_size", 1)
    if not checked:
        validate_jobs(jobs, config, options, ssg)
    compile_mode(compile, device)  # before run.json is written ("auto" is judged once resolved, at load)
    ssg = config.ssg if ssg is None else (ssg or None)  # an SSG, or None for off
    record = run_record(config, options, ssg, jobs)

    rank, world, local_rank = dist_env()
    dist = None
    if world > 1:
        import torch
        import torch.distributed as dist

        use_cuda = str(device) in ("auto", "cuda") and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(local_rank)
            device = f"cuda:{local_rank}"
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    try:
        problem = None  # rank 0 checks the folder; every rank stops on its verdict
        if rank == 0:
            try:
                check_run_folder(out_dir, record, overwrite)
            except SSGenError as e:
                problem = e
        if dist is not None:
            box = [problem]
            dist.broadcast_object_list(box, src=0)
            problem = box[0]
        if problem is not None:
            raise problem
        if loaded:
            pipe = model
        else:
            from .pipeline import describe_placement, load, slow_dtype_note

            if rank == 0 and err.is_terminal:
                where = f"{describe_placement(device, dtype)}; {batch_size} image(s) per call"
                err.print(f"[dim]loading {safe(config.name)} ({where}) ...[/]", highlight=False)
            slow = slow_dtype_note(device, dtype) if rank == 0 else None
            if slow:
                err.print(f"[yellow]note:[/] {slow}", highlight=False, soft_wrap=True)
            pipe = load(config, device=device, dtype=dtype, offline=offline, progress=rank == 0, compile=compile)
        mine = jobs[rank::world]
        todo = [j for j in mine if not is_complete(image_path(out_dir, j.index), j)]
        t0 = time.perf_counter()
        _generate(pipe, todo, out_dir, options, ssg, batch_size, rank, world, len(mine))
        if dist is not None:
            dist.barrier()
        seconds = time.perf_counter() - t0
        present = -1
        if rank == 0:
            present = write_manifest(out_dir, len(jobs))
            if present != len(jobs):
                raise SSGenError(f"{len(jobs) - present} images are missing in {out_dir}; re-run the same command")
        return RunReport(rank=rank, world=world, total=len(jobs), present=present, mine=len(mine),
                         skipped=len(mine) - len(todo), generated=len(todo), seconds=seconds,
                         pipeline=pipe if keep_pipeline else None)
    finally:
        if dist is not None and dist.is_initialized():
            dist.destroy_process_group()


def _generate(pipe: Any, todo: list[Job], out_dir: Path, options: dict[str, Any], ssg: SSG | None, batch_size: int,
              rank: int, world: int, n_mine: int) -> None:
    """Generate this process's missing images through the runner, a call per group of jobs, each image written
    atomically with its settings (`sinks.FolderSink`); a progress bar on rank 0 (the rate counts all processes)."""
    from .runner import ImageBar, Work, drive
    from .sinks import FolderSink

    works = (Work(group_request(g, pipe.config, options, ssg), indices=tuple(j.index for j in g))
             for g in groups(todo, batch_size))
    label = pipe.config.name + (f" (rank 0 of {world})" if world > 1 else "")
    with ImageBar(err, label, total=n_mine, done=n_mine - len(todo), world=world, enabled=rank == 0) as bar:
        drive(pipe, works, FolderSink(out_dir), watchers=[bar])


def run_count(folder: Path, hint: str) -> int | None:
    """The image count a batch folder's run.json gives; None without a run.json. A damaged one is an error that
    ends with `hint` (what to do instead)."""
    rf = folder / RUN_FILE
    if not rf.exists():
        return None
    try:
        return int(json.loads(read_text(rf, "run record", "", SSGenError))["count"])
    except (SSGenError, ValueError, KeyError, TypeError):
        raise SSGenError(f"{rf} is damaged{hint}") from None


def run_images(folder: Path, count: int) -> list[Path]:
    """Images 0..count-1 of a batch folder; a missing one is an error naming the first and how to finish them."""
    files = [image_path(folder, i) for i in range(count)]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise SSGenError(f"{folder} is missing {len(missing)} of {count} images (first: {missing[0].name}); re-run "
                         "the same `ssgen batch` command to finish them")
    return files


def npz_target(folder: Path, out: str | Path | None, overwrite: bool = False) -> Path:
    """Where pack_npz writes: `out`, or FOLDER.npz beside the folder. A name without `.npz` gets it appended
    (as numpy.savez does); its folder is created. An existing file is an error unless `overwrite`."""
    from .output import writable_folder

    name = folder.resolve().name + ".npz"
    target = Path(out).expanduser() if out else folder.resolve().with_name(name)
    if target.is_dir():
        raise SSGenError(f"-o {target} is a folder; give a file name such as {target / name}")
    if target.suffix.lower() != ".npz":
        target = target.with_name(target.name + ".npz")
        if target.is_dir():
            raise SSGenError(f"-o {target} is a folder; give another file name")
    writable_folder(target.parent, "-o")
    if target.exists() and not overwrite:
        raise SSGenError(f"{target} already exists; add --overwrite to replace it, or choose another -o")
    return target


def pack_npz(folder: str | Path, out: str | Path | None = None, num: int | None = None,
             overwrite: bool = False, on_note: Callable[[str], None] | None = None) -> tuple[Path, tuple]:
    """Write `arr_0` (N, H, W, 3) uint8 in index order, as the ADM/guided-diffusion evaluator reads.

    Streams image by image into the .npz (no N x H x W x 3 array in memory), atomically (a killed or failed
    pack leaves no file); checks that images 0..N-1 all exist, decode and share one shape. N defaults to
    the run's count (run.json), else all images. Target: see `npz_target`; everything about it is checked
    before the first image is read. Each image is read by `ssgen.images.rgb` (its size checked from the header
    against METRIC_LIMIT before decoding, decoded once, 16-bit and transparent images converted as a viewer shows
    them, EXIF orientation not applied: as evaluators read pixels); `on_note` hears what a conversion did
    (at most NOTES_SHOWN notes, then a count).
    """
    import numpy as np

    from .atomic import atomic_file
    from .images import METRIC_LIMIT, rgb

    d = Path(folder).expanduser()
    if not d.is_dir():
        raise SSGenError(f"{d} is not a folder of images" + ("" if d.exists() else " (it does not exist)"))
    if num is None:
        num = run_count(d, "; give the image count with --num")
        if num is None:
            num = len(list(d.glob("[0-9]*.png")))
            if num < 1:
                raise SSGenError(f"{d} holds no images to pack")
    if num < 1:
        raise SSGenError(f"--num must be at least 1, got {num}")
    run_images(d, num)
    target = npz_target(d, out, overwrite)
    notes: list[str] = []

    def pixels(i: int) -> np.ndarray:
        got = rgb(image_path(d, i), "image", METRIC_LIMIT, upright=False,
                  hint="re-run the same `ssgen batch` command to regenerate it")
        notes.extend(got.notes)
        return np.asarray(got.image, dtype=np.uint8)

    first = pixels(0)  # its shape is the array's; decoded once
    h, w = first.shape[:2]
    shape = (num, h, w, 3)
    with atomic_file(target, overwrite=overwrite) as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            with zf.open("arr_0.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})
                for i in range(num):
                    a, first = (first, None) if i == 0 else (pixels(i), None)
                    if a.shape != shape[1:]:
                        raise SSGenError(f"{image_path(d, i).name} is {a.shape[1]}x{a.shape[0]}, not {w}x{h} like "
                                         "the rest")
                    f.write(a.tobytes())
    if on_note is not None:
        for line in notes[:NOTES_SHOWN]:
            on_note(line)
        if len(notes) > NOTES_SHOWN:
            on_note(f"{len(notes) - NOTES_SHOWN} more such notes about other images")
    return target, shape

