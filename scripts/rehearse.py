"""Rehearse a released model at full size through the user's path: random weights saved exactly as the real
files are, served by a loopback Hub, driven by the real `ssgen` commands; prints and saves what it costs.

    python scripts/rehearse.py var-d16                      # fp32 and bf16 (bf16 where the CPU has it natively)
    python scripts/rehearse.py infinity-2b --dtype bfloat16 --work /big/disk/rehearsal
    make rehearse MODEL=hart-0.7b-1024px [DTYPE=bfloat16]

Steps:
1. Write the model's files once into WORK/files/<repo>/ (default WORK = rehearsal/ at the repo root): names,
   formats, dtypes and Hub layout of ../shared/notes/*.md section 2, random values, tensor by tensor
   (scripts/rehearse_models.py says what, scripts/rehearse_files.py how). `.pth`/`.bin` and small files are
   stored; safetensors files (Infinity-8B's 33.5 GB of shards, the text encoders) are never stored: the
   server generates their bytes on the fly, deterministically, and their sha256 is computed once by
   streaming and remembered beside the stored files. Free disk space is checked first.
2. Serve them on 127.0.0.1 with ssgen.testing.hubserver's HubServer (one commit for every repo), with a fresh
   HF_HOME (WORK/MODEL/hf_home, deleted at the end unless --keep-cache).
3. Write WORK/MODEL/MODEL.yaml: the released config with `revision:` = the server's commit and the computed
   `sha256:` of every file role. Then, each command a subprocess of the installed `ssgen`:
     a. `ssgen models download` of the same YAML without the sha256 pins  -> download time
     b. `ssgen models download MODEL.yaml`  (nothing to download: hashes every file role; folder roles, such
        as all of Switti's, have no sha256 to check)  -> verify time
     c. the same command again: must send no request and hash nothing (server log, sha256 record, time)
     d. per dtype: `ssgen generate --model MODEL.yaml COND -n 2 -b 1 --dtype D --device cpu --json`
        (Infinity at pn 0.06M, 256 px; HART at 1024 px, the only schedule its files define; Switti at its
        model's one resolution, 512 or 1024 px), which must
        send no request and hash nothing either.
   Every command's RssAnon (anonymous memory: file-backed pages of memory-mapped checkpoints do not count) is
   sampled every 50 ms from /proc/PID/status (common.RssSampler); its load, first-image and per-image times come
   from the `timings` of `ssgen generate --json`.
4. Print a table and write WORK/MODEL.json: per dtype the times, peak RssAnon, the model's own bytes in the
   run dtype (parameters x dtype size, per role) and a bare `import torch` process's RssAnon.

One rehearsal at a time (a lock in WORK): they share the CPU, the disk and the memory they measure.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import fnmatch
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from common import RssSampler, cpu_info
from rehearse_files import PT_METADATA, SafetensorsFile, fingerprint, write_pth
from rehearse_models import MODELS, Plan, RepoFile, config, gb
from rehearse_models import plan as make_plan

from ssgen.testing.hubserver import HubFile, HubServer, lfs_oid

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
MARGIN = 2 * 10**9  # disk space kept free beyond what the rehearsal writes
GiB = 2**30


# ---------------------------------------------------------------------------------------------------
# the files: written once, or generated on the fly
# ---------------------------------------------------------------------------------------------------


class GeneratedFile(HubFile):
    """A served file whose bytes are generated for each request (never stored)."""

    def __init__(self, path: str, source: SafetensorsFile, sha256: str):
        super().__init__(path, None, None, source.size, sha256, lfs_oid(sha256, source.size))
        self.source = source

    def chunks(self, start: int, end: int):
        return self.source.chunks(start, end)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(8 << 20):
            h.update(piece)
    return h.hexdigest()


def file_fingerprint(f: RepoFile, key: str) -> str:
    meta = "" if f.metadata == PT_METADATA else f"|{json.dumps(f.metadata)}"  # the default keeps older records valid
    return fingerprint(SEED, key, f.tensors, f"{f.fmt}|{f.wrap}|{hashlib.sha256(f.data).hexdigest()}{meta}")


def record_of(disk: Path) -> Path:
    return disk.with_name(disk.name + ".rehearsal.json")


def read_record(disk: Path) -> dict:
    try:
        return json.loads(record_of(disk).read_text())
    except (OSError, ValueError):
        return {}


def is_current(f: RepoFile, key: str, disk: Path) -> bool:
    """Whether the stored (or, for generated files, hashed) file matches what the plan would write now."""
    rec = read_record(disk)
    if rec.get("fingerprint") != file_fingerprint(f, key):
        return False
    return f.fmt == "safetensors" or (disk.is_file() and disk.stat().st_size == rec.get("size"))


def materialize(p: Plan, store: Path) -> tuple[dict[str, dict[str, HubFile]], dict[tuple[str, str], dict]]:
    """Write (or reuse) every file of the plan; -> served files per repo, and {(repo, path): info}."""
    served: dict[str, dict[str, HubFile]] = {}
    info: dict[tuple[str, str], dict] = {}
    for repo, files in p.repos.items():
        out = served.setdefault(repo, {})
        for f in (f for f in files if f.same_as is None):
            key, disk = f"{repo}/{f.path}", store / repo / f.path
            disk.parent.mkdir(parents=True, exist_ok=True)
            fresh = is_current(f, key, disk)
            t0 = time.perf_counter()
            if f.fmt == "safetensors":
                source = SafetensorsFile(f.tensors, SEED, key, f.metadata)
                if not fresh:
                    print(f"  hashing {key} ({gb(source.size)}, generated on the fly, never stored) ...", flush=True)
                    record_of(disk).write_text(json.dumps({"fingerprint": file_fingerprint(f, key), "size": source.size,
                                                           "sha256": source.sha256(), "generated": True}))
                out[f.path] = GeneratedFile(f.path, source, read_record(disk)["sha256"])
            else:
                if not fresh:
                    print(f"  writing {key} ({gb(f.size_hint)}) ...", flush=True)
                    if f.fmt == "pth":
                        tmp = disk.parent / ".partial" / disk.name  # torch names the archive after the file
                        write_pth(tmp, f.tensors, SEED, key, wrap=f.wrap)
                        os.replace(tmp, disk)
                        tmp.parent.rmdir()
                    else:
                        disk.write_bytes(f.data)
                    record_of(disk).write_text(json.dumps({"fingerprint": file_fingerprint(f, key),
                                                           "size": disk.stat().st_size, "sha256": sha256_of(disk)}))
                rec = read_record(disk)
                if f.fmt == "pth":
                    size, sha = rec["size"], rec["sha256"]
                    out[f.path] = HubFile(f.path, None, disk, size, sha, lfs_oid(sha, size))
                else:
                    out[f.path] = HubFile.make(f.path, f.data)
            if not fresh:
                print(f"    {time.perf_counter() - t0:.1f} s", flush=True)
            rec = read_record(disk)
            info[(repo, f.path)] = {"size": rec["size"], "sha256": rec["sha256"],
                                    "stored": None if f.fmt == "safetensors" else str(disk)}
        for f in (f for f in files if f.same_as is not None):
            out[f.path] = dataclasses.replace(out[f.same_as], path=f.path)
            info[(repo, f.path)] = dict(info[(repo, f.same_as)], same_as=f.same_as)
    return served, info


def fetched(p: Plan) -> list[tuple[str, str]]:
    """The (repo, path) files `ssgen models download` fetches: each file role, and each folder role's files
    that its `allow:` patterns match."""
    out = []
    for w in config(p.name)["weights"].values():
        names = [f.path for f in p.repos.get(w["repo"], [])]
        if "file" in w:
            out += [(w["repo"], w["file"])] if w["file"] in names else []
            continue
        folder = (w.get("folder") or "").strip("/")
        prefix = f"{folder}/" if folder else ""
        pats = [prefix + a for a in w["allow"]] if w.get("allow") else [prefix + "*"]
        out += [(w["repo"], n) for n in names if n.startswith(prefix) and any(fnmatch.fnmatch(n, q) for q in pats)]
    return list(dict.fromkeys(out))


def check_disk(p: Plan, store: Path, hf_home: Path) -> int:
    """Stop with a clear message when the files to write plus the Hub cache copy do not fit; -> bytes fetched."""
    by_path = {(repo, f.path): f for repo, files in p.repos.items() for f in files}
    to_write = sum(f.size_hint for (repo, path), f in by_path.items()
                   if f.fmt != "safetensors" and f.same_as is None and not is_current(f, f"{repo}/{path}",
                                                                                    store / repo / path))
    download = sum(by_path[(repo, by_path[(repo, path)].same_as or path)].size_hint for repo, path in fetched(p))
    store.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(store).free + (dir_size(hf_home) if hf_home.exists() else 0)
    need = to_write + download + MARGIN
    if need > free:
        raise SystemExit(f"not enough disk space under {store}: the rehearsal of {p.name} writes {gb(to_write)} of "
                         f"files and the Hub cache copy takes {gb(download)} (+ {gb(MARGIN)} kept free), {gb(need)} in "
                         f"all, but {gb(free)} are free; free space (e.g. other models' files under {store}) or pass "
                         "--work DIR on a larger disk")
    return download


def dir_size(d: Path) -> int:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file() and not f.is_symlink())


# ---------------------------------------------------------------------------------------------------
# running commands and measuring them
# ---------------------------------------------------------------------------------------------------


def measure(cmd: list[str], env: dict, log: Path, hub: HubServer | None = None, record: Path | None = None) -> dict:
    """Run a command; its wall time, peak RssAnon / RssFile (sampled every 50 ms) and VmHWM, the Hub requests
    it made, whether it rewrote ssgen's sha256 record, the time its stdout lines arrived, and its JSON output."""
    if hub is not None:
        hub.clear()
    before = record.stat().st_mtime_ns if record is not None and record.exists() else None
    load_before = os.getloadavg()[0]  # the machine is shared: a busy CPU slows every figure below
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
    with RssSampler(proc.pid, interval=0.05, t0=t0) as mem:  # its samples split loading from generating
        lines = [(time.perf_counter() - t0, line) for line in proc.stdout]  # PYTHONUNBUFFERED: lines as printed
        rc = proc.wait()
        wall = time.perf_counter() - t0
    result = {"cmd": " ".join(cmd), "rc": rc, "wall_s": round(wall, 2), "log": str(log),
              "peak_rss_anon_bytes": mem.peak.get("RssAnon", 0), "peak_rss_file_bytes": mem.peak.get("RssFile", 0),
              "vm_hwm_bytes": mem.peak.get("VmHWM", 0),
              "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)], "trace": mem.samples}
    for at, line in lines:
        if line.startswith("{"):
            try:
                result["json"], result["json_at_s"] = json.loads(line), round(at, 3)
            except ValueError:
                pass
    if hub is not None:
        result["requests"] = {"GET /resolve": hub.count("GET", "/resolve/"),
                              "HEAD /resolve": hub.count("HEAD", "/resolve/"), "api": hub.count(None, "/api/"),
                              "all": hub.count()}
    if record is not None:
        after = record.stat().st_mtime_ns if record.exists() else None
        result["sha256_record_rewritten"] = after != before
    if rc != 0:
        tail = log.read_text().strip().splitlines()[-5:]
        print(f"  command failed (exit {rc}): {' '.join(cmd)}\n    " + "\n    ".join(tail), flush=True)
    return result


def bf16_skipped() -> str | None:
    """None when the rehearsal runs bf16 here (the CPU computes it natively), else why it is skipped."""
    if cpu_info()["bf16_native"]:
        return None
    return "the CPU has neither avx512_bf16 nor amx_bf16 (bf16 would be emulated: slow and not what users run)"


def machine() -> dict:
    """The machine a report was measured on."""
    reported = ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    cpu = cpu_info(reported)
    return {"cpu": cpu["model_name"], "cores": cpu["cores"], "python": platform.python_version(),
            "bf16_native": cpu["bf16_native"], "cpu_flags": sorted(f for f in reported if cpu[f])}


# ---------------------------------------------------------------------------------------------------
# the rehearsal
# ---------------------------------------------------------------------------------------------------


def write_configs(name: str, commit: str, info: dict, folder: Path) -> tuple[Path, Path]:
    """MODEL.yaml (revision = the server's commit, sha256 of every file role) and MODEL-nosha.yaml (no pins)."""
    c = config(name)
    for w in c["weights"].values():
        w["revision"] = commit
        if "file" in w:
            w["sha256"] = info[(w["repo"], w["file"])]["sha256"]
    pinned, nosha = folder / f"{name}.yaml", folder / f"{name}-nosha.yaml"
    pinned.write_text(yaml.safe_dump(c, sort_keys=False))
    for w in c["weights"].values():
        if "file" in w:
            w["sha256"] = None
    nosha.write_text(yaml.safe_dump(c, sort_keys=False))
    return pinned, nosha


def check_downloads(p: Plan, info: dict, hf_home: Path, commit: str) -> dict[str, bool]:
    """--files-only: every downloaded file hashed again and compared with what the server computed (the
    generated safetensors files included), and each safetensors header parsed."""
    from safetensors import safe_open

    out = {}
    for repo, path in fetched(p):
        local = hf_home / "hub" / ("models--" + repo.replace("/", "--")) / "snapshots" / commit / path
        ok = local.is_file() and sha256_of(local) == info[(repo, path)]["sha256"]
        if ok and path.endswith(".safetensors"):
            with safe_open(str(local), "pt") as f:
                ok = len(list(f.keys())) > 0
        out[f"{repo}/{path}"] = ok
        print(f"  {repo}/{path}: {'ok' if ok else 'MISMATCH'}", flush=True)
    return out


def dtype_size(dtype: str) -> int:
    return 4 if dtype == "float32" else 2


class StepFailed(Exception):
    """A command of the rehearsal failed: the report says which, with its log."""


@dataclasses.dataclass
class Runner:
    """Runs the rehearsal's commands against the Hub, measuring each (`measure`); a failed one stops."""

    env: dict
    logs: Path
    record: Path  # ssgen's sha256 record in HF_HOME: rewritten only when a file was hashed
    prefix: int  # words of the ssgen command itself (not echoed)
    hub: HubServer | None = None
    steps: dict = dataclasses.field(default_factory=dict)

    def step(self, name: str, cmd: list[str]) -> dict:
        print(f"  {name}: {' '.join(cmd[self.prefix:])}", flush=True)
        r = self.steps[name] = measure(cmd, self.env, self.logs / f"{name}.log", self.hub, self.record)
        print(f"    {r['wall_s']:.1f} s, rc {r['rc']}, requests {r['requests']}, peak RssAnon "
              f"{r['peak_rss_anon_bytes'] / GiB:.2f} GiB, sha256 record rewritten: {r['sha256_record_rewritten']}, "
              f"load average {r['loadavg_1min']}", flush=True)
        if r["rc"] != 0:
            raise StepFailed(f"{name} failed (exit {r['rc']}): see {r['log']}")
        return r


# --load-only: load the model as `ssgen generate` does (ssgen.load, the pinned config) and print the seconds
LOAD_ONLY = ("import json, sys, time\nimport ssgen\nt = time.perf_counter()\n"
             "ssgen.load(sys.argv[1], device='cpu', dtype=sys.argv[2])\n"
             "print(json.dumps({'load_s': round(time.perf_counter() - t, 2)}))")


def rehearse(args) -> dict:
    p = make_plan(args.model, args.shards)
    work = Path(args.work).resolve()
    mdir, store = work / args.model, work / "files"
    hf_home = mdir / "hf_home"
    commit = hashlib.sha1(f"ssgen rehearsal {args.model}".encode()).hexdigest()
    download_bytes = check_disk(p, store, hf_home)
    print(f"{p.name}: files in {store} (stored or generated; {gb(download_bytes)} to download)", flush=True)
    t0 = time.perf_counter()
    served, info = materialize(p, store)
    prepare_s = time.perf_counter() - t0

    mdir.mkdir(parents=True, exist_ok=True)
    (mdir / "logs").mkdir(exist_ok=True)
    (mdir / "out").mkdir(exist_ok=True)
    pinned, nosha = write_configs(p.name, commit, info, mdir)
    shutil.rmtree(hf_home, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_ETAG_TIMEOUT="60",
               HF_HUB_DOWNLOAD_TIMEOUT="120", PYTHONUNBUFFERED="1")
    record = hf_home / "assets" / "ssgen" / "sha256-verified.json"
    exe = Path(sys.executable).parent / "ssgen"
    ssgen = [str(exe)] if exe.exists() else [sys.executable, "-m", "ssgen"]

    report: dict = {"model": p.name, "family": p.family, "schedule": p.schedule, "notes": p.notes,
                    "machine": machine(),
                    "server_commit": commit, "files_prepare_s": round(prepare_s, 1),
                    "files": [{"repo": r, "path": f, **i} for (r, f), i in info.items()],
                    "download_bytes": download_bytes, "params": p.params, "runs": {}, "skipped": {}}
    bare = measure([sys.executable, "-c", "import torch"], env, mdir / "logs" / "import-torch.log")
    report["import_torch_rss_anon_bytes"] = bare["peak_rss_anon_bytes"]
    runner = Runner(env, mdir / "logs", record, len(ssgen))
    report["steps"] = runner.steps  # filled as the steps run
    try:
        with HubServer({repo: {} for repo in served}, commit=commit) as hub:
            for repo, files in served.items():
                hub.repos[repo] = files
            runner.env["HF_ENDPOINT"], runner.hub = hub.endpoint, hub
            print(f"  serving {sum(len(f) for f in served.values())} files on {hub.endpoint}", flush=True)
            runner.step("download", ssgen + ["models", "download", str(nosha)])
            runner.step("verify", ssgen + ["models", "download", str(pinned)])
            again = runner.step("download-again", ssgen + ["models", "download", str(pinned)])
            report["download_s"] = runner.steps["download"]["wall_s"]
            report["verify_s"] = runner.steps["verify"]["wall_s"]
            report["second_run"] = {k: again[k] for k in ("wall_s", "requests", "sha256_record_rewritten")}
            if args.files_only:
                report["downloaded_match"] = check_downloads(p, info, hf_home, commit)
                return report
            if args.load_only:  # the weights through ssgen.load (the loader generate uses), no image
                report["loads"] = {}
                for dtype in args.dtype:
                    cmd = [sys.executable, "-c", LOAD_ONLY, str(pinned), dtype]
                    r = runner.step(f"load-{dtype}", cmd)
                    report["loads"][dtype] = {"wall_s": r["wall_s"], "load_s": r["json"]["load_s"],
                                              "peak_rss_anon_bytes": r["peak_rss_anon_bytes"],
                                              "vm_hwm_bytes": r["vm_hwm_bytes"]}
                return report
            for dtype in args.dtype:
                if dtype == "bfloat16" and bf16_skipped():
                    report["skipped"][dtype] = bf16_skipped()
                    print(f"  bfloat16 skipped: {bf16_skipped()}", flush=True)
                    continue
                out = mdir / "out" / f"{p.name}-{dtype}.png"
                cmd = ssgen + ["generate", "--model", str(pinned), *p.args, "-n", str(args.images), "-b", "1",
                               "--dtype", dtype, "--device", "cpu", "--json", "-o", str(out), "--overwrite"]
                report["runs"][dtype] = summarize(runner.step(f"generate-{dtype}", cmd), p, dtype, report)
    except StepFailed as e:
        report["failed"] = str(e)
    return report


def summarize(r: dict, p: Plan, dtype: str, report: dict) -> dict:
    """One generate run: times from its --json `timings`, memory, the model's bytes in the run dtype."""
    t = r["json"]["timings"]
    start = r["json_at_s"] - t["load_s"] - t["generate_s"]  # interpreter start and imports, before the command
    model_bytes = {role: n * dtype_size(dtype) for role, n in p.params.items()}
    total = sum(model_bytes.values())
    peak = r["peak_rss_anon_bytes"]
    loaded_at = start + t["load_s"]  # seconds since launch when the model was loaded
    load_peak = max((rss for at, rss in r["trace"] if at <= loaded_at), default=0)
    after_load = next((rss for at, rss in r["trace"] if at > loaded_at), load_peak)
    torch_rss = report["import_torch_rss_anon_bytes"]
    return {"load_peak_rss_anon_bytes": load_peak,  # peak until the model is loaded (weights + imports)
            "load_over_model": round((load_peak - torch_rss) / total, 3),
            "one_image_bytes": max(peak - after_load, 0),  # generating: what one image's work adds on top
            "wall_s": r["wall_s"], "startup_s": round(start, 2), "load_s": t["load_s"],
            "first_image_s": round(start + t["first_image_s"], 2), "per_image_s": t["per_image_s"],
            "peak_rss_anon_bytes": peak, "peak_rss_file_bytes": r["peak_rss_file_bytes"],
            "vm_hwm_bytes": r["vm_hwm_bytes"], "model_bytes": model_bytes, "model_bytes_total": total,
            "peak_over_model": round((peak - report["import_torch_rss_anon_bytes"]) / total, 3),
            "requests": r["requests"], "sha256_record_rewritten": r["sha256_record_rewritten"],
            "loadavg_1min": r["loadavg_1min"], "files": r["json"]["files"]}


def table(rep: dict) -> str:
    head = ("| model | dtype | download s | verify s | load s | first image s | per image s | peak RssAnon GiB | "
            "model GiB (run dtype) | (peak - torch) / model | loading: (peak - torch) / model | one image GiB | "
            "requests |")
    rows = [head, "|" + "---|" * 13]
    for dtype, r in rep["runs"].items():
        per = ", ".join(f"{x:.1f}" for x in r["per_image_s"])
        rows.append(f"| {rep['model']} | {dtype} | {rep['download_s']:.1f} | {rep['verify_s']:.1f} | "
                    f"{r['load_s']:.1f} | {r['first_image_s']:.1f} | {per} | {r['peak_rss_anon_bytes'] / GiB:.2f} | "
                    f"{r['model_bytes_total'] / GiB:.2f} | {r['peak_over_model']:.2f} | {r['load_over_model']:.2f} | "
                    f"{r['one_image_bytes'] / GiB:.2f} | {r['requests']['all']} |")
    for dtype, r in rep.get("loads", {}).items():  # --load-only: loaded, no image
        rows.append(f"| {rep['model']} | {dtype} | {rep['download_s']:.1f} | {rep['verify_s']:.1f} | "
                    f"{r['load_s']:.1f} | (load only) | - | {r['peak_rss_anon_bytes'] / GiB:.2f} | - | - | - | - | - |")
    for dtype, why in rep["skipped"].items():
        rows.append(f"| {rep['model']} | {dtype} | skipped: {why} |")
    if "failed" in rep:
        rows.append(f"| {rep['model']} | - | FAILED: {rep['failed']} |")
    s = rep.get("second_run", {})
    rows.append("")
    rows.append(f"bare `import torch`: {rep['import_torch_rss_anon_bytes'] / GiB:.2f} GiB RssAnon. "
                f"Schedule: {rep['schedule']}. "
                f"Second `ssgen models download`: {s.get('wall_s')} s, requests {s.get('requests')}, "
                f"sha256 record rewritten: {s.get('sha256_record_rewritten')}.")
    if rep["runs"]:
        r = next(iter(rep["runs"].values()))
        roles = "; ".join(f"{d}: " + ", ".join(f"{k} {v / GiB:.2f} GiB" for k, v in rr["model_bytes"].items())
                          for d, rr in rep["runs"].items())
        rows.append(f"model bytes per role (params x run dtype): {roles}. Peak RssFile (mapped checkpoints) "
                    f"{r['peak_rss_file_bytes'] / GiB:.2f} GiB.")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=MODELS)
    ap.add_argument("--work", default=str(ROOT / "rehearsal"),
                    help="work folder (default: rehearsal/ at the repo root)")
    ap.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    ap.add_argument("--images", type=int, default=2, help="images to generate, one per forward pass (default 2)")
    ap.add_argument("--keep-cache", action="store_true", help="keep WORK/MODEL/hf_home (the downloaded copy)")
    ap.add_argument("--files-only", action="store_true",
                    help="stop after the download / verify / second-download steps (no generation)")
    ap.add_argument("--load-only", action="store_true",
                    help="after the download steps, only load the model (ssgen.load) in each dtype: no image")
    ap.add_argument("--shards", type=int, default=None,
                    help="infinity-8b: serve only the first N transformer shards (with --files-only: a cheaper check "
                         "of the shard path)")
    args = ap.parse_args()
    if args.shards is not None and not args.files_only:
        ap.error("--shards N serves an incomplete model: use it with --files-only")
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    with open(work / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another rehearsal is running in {work}; run one at a time") from None
        try:
            rep = rehearse(args)
        finally:
            if not args.keep_cache:  # the downloaded copy (up to 45 GB for infinity-8b)
                shutil.rmtree(work / args.model / "hf_home", ignore_errors=True)
    out = work / f"{args.model}.json"
    for step in rep.get("steps", {}).values():
        step.pop("trace", None)  # the memory samples served the split above; the JSON keeps the figures
    out.write_text(json.dumps(rep, indent=1) + "\n")
    print()
    print(table(rep))
    print(f"\nwrote {out}")
    if "failed" in rep:
        raise SystemExit(f"rehearsal of {args.model}: {rep['failed']}")


if __name__ == "__main__":
    main()
